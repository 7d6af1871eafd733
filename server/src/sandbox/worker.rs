//! The sandbox worker process (`punie sandbox-worker`): one RustPython interpreter with an
//! allowlisted `builtins`, OS limits and no file access, speaking the `protocol` on fds 3
//! and 4, which only this Rust code touches (the interpreter has no file objects, and its
//! `print` is a capture). It runs snippets one after another until the server closes fd 3.
//!
//! Everything that can go wrong inside RustPython (an aborting allocation, a native stack
//! overflow, a panic) ends this process only; the server sees it die and starts another.

use std::cell::RefCell;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};

use rustpython_vm::builtins::{
    PyBaseException, PyBaseExceptionRef, PyDict, PyFloat, PyInt, PyList, PyStr, PyTuple,
};
use rustpython_vm::compiler::Mode;
use rustpython_vm::function::FuncArgs;
use rustpython_vm::scope::Scope;
use rustpython_vm::{
    AsObject, Interpreter, PyObjectRef, PyRef, PyResult, Settings, VirtualMachine,
};

use super::protocol::{self, FromWorker, ToWorker, WireError};
use super::{PyError, allowlist, validate};
use crate::tools::{ParamDefault, ParamType, Tool, ToolSpec};

mod json;
mod lockdown;

/// Native stack of the interpreter thread: the parser, compiler and `repr` recurse.
const STACK_BYTES: usize = 256 * 1024 * 1024;
/// Python recursion limit.
const RECURSION_LIMIT: usize = 400;

/// Options of the worker process.
#[derive(Debug, Clone, Copy)]
pub struct WorkerOptions {
    pub memory_mb: u64,
}

/// Per-snippet state of the interpreter thread.
#[derive(Default)]
struct RunState {
    /// The `exec` being run and the tool calls it has made.
    exec: u64,
    calls: u32,
    output: String,
    output_limit: usize,
    truncated: bool,
    json_module: Option<PyObjectRef>,
}

/// The protocol pipes.
struct Channel {
    from_parent: BufReader<File>,
    to_parent: File,
}

thread_local! {
    static STATE: RefCell<RunState> = RefCell::new(RunState::default());
    static CHANNEL: RefCell<Option<Channel>> = const { RefCell::new(None) };
}

/// Runs the worker until the server closes its pipe. Called by `punie sandbox-worker`.
pub fn run_worker(options: WorkerOptions) -> anyhow::Result<()> {
    let channel = open_channel()?;
    lockdown::early();
    let thread = std::thread::Builder::new()
        .name("sandbox-python".to_owned())
        .stack_size(STACK_BYTES)
        .spawn(move || {
            CHANNEL.with(|slot| *slot.borrow_mut() = Some(channel));
            interpreter_main(options)
        })?;
    match thread.join() {
        Ok(res) => res,
        // The panic message is already on stderr, where the server reads it.
        Err(_) => std::process::exit(101),
    }
}

/// The pipes the server put on fds 3 and 4.
fn open_channel() -> anyhow::Result<Channel> {
    #[cfg(unix)]
    {
        use std::os::fd::FromRawFd;
        let is_pipe = |fd: i32| {
            // SAFETY: fstat writes into the zeroed struct we pass and reads nothing else.
            unsafe {
                let mut stat: libc::stat = std::mem::zeroed();
                libc::fstat(fd, &mut stat) == 0 && stat.st_mode & libc::S_IFMT == libc::S_IFIFO
            }
        };
        anyhow::ensure!(
            is_pipe(protocol::FROM_PARENT_FD) && is_pipe(protocol::TO_PARENT_FD),
            "punie sandbox-worker is started by the server, which hands it its protocol on \
             fds {} and {}",
            protocol::FROM_PARENT_FD,
            protocol::TO_PARENT_FD
        );
        // SAFETY: both descriptors are open pipes (checked above) that nothing else in this
        // process owns; the server made them for this worker alone.
        let (from_parent, to_parent) = unsafe {
            (
                File::from_raw_fd(protocol::FROM_PARENT_FD),
                File::from_raw_fd(protocol::TO_PARENT_FD),
            )
        };
        Ok(Channel {
            from_parent: BufReader::new(from_parent),
            to_parent,
        })
    }
    #[cfg(not(unix))]
    anyhow::bail!("the sandbox worker needs a Unix system")
}

fn send(msg: &FromWorker) {
    let mut line = msg.to_line();
    line.push('\n');
    send_line(&line);
}

fn send_line(line: &str) {
    let sent = CHANNEL.with(|slot| {
        slot.borrow_mut().as_mut().is_some_and(|channel| {
            channel
                .to_parent
                .write_all(line.as_bytes())
                .and_then(|()| channel.to_parent.flush())
                .is_ok()
        })
    });
    if !sent {
        // The server is gone.
        std::process::exit(0);
    }
}

fn receive() -> Option<ToWorker> {
    CHANNEL.with(|slot| {
        let mut slot = slot.borrow_mut();
        let channel = slot.as_mut()?;
        let mut line = String::new();
        match channel.from_parent.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => ToWorker::parse(line.trim_end()),
        }
    })
}

fn interpreter_main(options: WorkerOptions) -> anyhow::Result<()> {
    let mut settings = Settings::default();
    settings.install_signal_handlers = false;
    settings.import_site = false;
    let interpreter = Interpreter::without_stdlib(settings);
    let tool_functions = interpreter.enter(|vm| {
        vm.recursion_limit.set(RECURSION_LIMIT);
        restrict_builtins(vm);
        Tool::all()
            .map(|tool| {
                let spec = tool.spec();
                let function = vm
                    .new_function(spec.name, move |args: FuncArgs, vm: &VirtualMachine| {
                        call_tool(spec, args, vm)
                    });
                (spec.name, PyObjectRef::from(function))
            })
            .collect::<Vec<_>>()
    });
    lockdown::limit_process(options.memory_mb);
    lockdown::forbid_files_and_exec();
    send(&FromWorker::Ready {});
    while let Some(msg) = receive() {
        let ToWorker::Exec {
            id,
            code,
            output_limit,
        } = msg
        else {
            // A tool result with no call pending: the protocol is out of step; stop.
            anyhow::bail!("unexpected message from the server");
        };
        let done =
            interpreter.enter(|vm| run_snippet(vm, id, &code, output_limit, &tool_functions));
        send(&done);
    }
    Ok(())
}

/// Empties the `builtins` module and refills it from the allowlist, so that every path to
/// the builtins finds only these (the validator already refuses every name outside it).
fn restrict_builtins(vm: &VirtualMachine) {
    let dict = vm.builtins.dict();
    let kept: Vec<(&str, PyObjectRef)> = allowlist::BUILTINS
        .iter()
        .filter_map(|name| {
            dict.get_item_opt(*name, vm)
                .ok()
                .flatten()
                .map(|value| (*name, value))
        })
        .collect();
    dict.clear();
    for (name, value) in kept {
        let _ = dict.set_item(name, value, vm);
    }
    let print = vm.new_function("print", builtin_print);
    let import = vm.new_function("__import__", builtin_import);
    let _ = dict.set_item("print", print.into(), vm);
    let _ = dict.set_item("__import__", import.into(), vm);
}

fn builtin_print(args: FuncArgs, vm: &VirtualMachine) -> PyResult<()> {
    let mut sep = " ".to_owned();
    let mut end = "\n".to_owned();
    for (name, value) in &args.kwargs {
        let text = if vm.is_none(value) {
            None
        } else {
            match value.downcast_ref::<PyStr>() {
                Some(text) => Some(text.to_string_lossy().into_owned()),
                None => return Err(vm.new_type_error(format!("{name} must be None or a string"))),
            }
        };
        match name.as_str() {
            "sep" => sep = text.unwrap_or_else(|| " ".to_owned()),
            "end" => end = text.unwrap_or_else(|| "\n".to_owned()),
            "flush" => {}
            "file" if vm.is_none(value) => {}
            "file" => {
                return Err(vm.new_type_error("print(file=...) is not available in the sandbox"));
            }
            other => {
                return Err(vm.new_type_error(format!(
                    "'{other}' is an invalid keyword argument for print()"
                )));
            }
        }
    }
    let mut line = String::new();
    for (idx, arg) in args.args.iter().enumerate() {
        if idx > 0 {
            line.push_str(&sep);
        }
        line.push_str(&arg.str(vm)?.to_string_lossy());
    }
    line.push_str(&end);
    STATE.with(|state| {
        let mut state = state.borrow_mut();
        if state.truncated {
            return;
        }
        let room = state.output_limit.saturating_sub(state.output.len());
        if line.len() <= room {
            state.output.push_str(&line);
        } else {
            let mut cut = room;
            while cut > 0 && !line.is_char_boundary(cut) {
                cut -= 1;
            }
            state.output.push_str(&line[..cut]);
            state.truncated = true;
        }
    });
    Ok(())
}

/// `import json` (and only that) works; the module is already bound anyway.
fn builtin_import(args: FuncArgs, vm: &VirtualMachine) -> PyResult {
    let name = args
        .args
        .first()
        .and_then(|name| {
            name.downcast_ref::<PyStr>()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    if name == "json"
        && let Some(module) = STATE.with(|state| state.borrow().json_module.clone())
    {
        return Ok(module);
    }
    Err(vm.new_import_error(
        format!("import of '{name}' is not allowed in the sandbox"),
        vm.ctx.new_str(name),
    ))
}

fn run_snippet(
    vm: &VirtualMachine,
    exec: u64,
    code: &str,
    output_limit: usize,
    tools: &[(&'static str, PyObjectRef)],
) -> FromWorker {
    STATE.with(|state| {
        *state.borrow_mut() = RunState {
            exec,
            output_limit,
            ..RunState::default()
        };
    });
    let res = compile_and_run(vm, code, tools);
    let (output, truncated) = STATE.with(|state| {
        let mut state = state.borrow_mut();
        state.json_module = None;
        let mut output = std::mem::take(&mut state.output);
        if state.truncated {
            if !output.ends_with('\n') {
                output.push('\n');
            }
            output.push_str(&format!(
                "[output truncated: the snippet printed more than {} KB]",
                state.output_limit / 1024
            ));
        }
        (output, state.truncated)
    });
    match res {
        Ok(()) => FromWorker::Done {
            exec,
            ok: true,
            output,
            truncated,
            error: None,
        },
        Err(err) => FromWorker::Done {
            exec,
            ok: false,
            output,
            truncated,
            error: Some(WireError {
                type_name: err.type_name,
                message: protocol::cap_message(&err.message),
                line: err.line,
            }),
        },
    }
}

fn compile_and_run(
    vm: &VirtualMachine,
    code: &str,
    tools: &[(&'static str, PyObjectRef)],
) -> Result<(), PyError> {
    validate::precheck(code)?;
    let parsed = rustpython_vm::compiler::parser::parse_module(code).map_err(|err| {
        let offset = err.location.start().to_usize().min(code.len());
        let line = code.as_bytes()[..offset]
            .iter()
            .filter(|&&byte| byte == b'\n')
            .count()
            + 1;
        PyError {
            type_name: "SyntaxError".to_owned(),
            message: err.error.to_string(),
            line: u32::try_from(line).ok(),
        }
    })?;
    validate::validate_module(parsed.syntax(), code)?;
    let code_obj = vm
        .compile(code, Mode::Exec, "<snippet>".to_owned())
        .map_err(|err| PyError {
            type_name: "SyntaxError".to_owned(),
            message: err.to_string(),
            line: None,
        })?;

    let globals = vm.ctx.new_dict();
    for (name, function) in tools {
        let _ = globals.set_item(*name, function.clone(), vm);
    }
    let json_module = json::module(vm);
    let _ = globals.set_item("json", json_module.clone(), vm);
    STATE.with(|state| state.borrow_mut().json_module = Some(json_module));
    let scope = Scope::with_builtins(None, globals, vm);
    vm.run_code_obj(code_obj, scope)
        .map(|_| ())
        .map_err(|exc| describe_exception(vm, &exc))
}

/// The exception's class name, `str()` and innermost snippet line, without RustPython's
/// traceback printer (which reads the code object's file).
fn describe_exception(vm: &VirtualMachine, exc: &PyBaseExceptionRef) -> PyError {
    let type_name = exc.class().name().to_string();
    let message = match exc.as_object().str(vm) {
        Ok(text) => protocol::cap_message(&text.to_string_lossy()),
        Err(_) => String::new(),
    };
    let mut line = None;
    let mut traceback = exc.__traceback__();
    while let Some(tb) = traceback {
        line = u32::try_from(tb.lineno.get()).ok();
        traceback = tb.next.lock().clone();
    }
    PyError {
        type_name,
        message,
        line,
    }
}

/// The bytes of a call's text arguments, known without copying them: no more than what the
/// call would send.
fn text_argument_bytes(args: &FuncArgs) -> usize {
    args.args
        .iter()
        .chain(args.kwargs.values())
        .filter_map(|value| value.downcast_ref::<PyStr>())
        .map(|text| text.byte_len())
        .sum()
}

/// The error of a call whose arguments are `bytes` (`at_least` that many) as sent.
fn too_large(
    spec: &ToolSpec,
    at_least: &str,
    bytes: usize,
    vm: &VirtualMachine,
) -> PyBaseExceptionRef {
    vm.new_value_error(format!(
        "{}(): the arguments are {at_least}{bytes} bytes as sent, more than the sandbox allows \
         for one call ({} bytes)",
        spec.name,
        protocol::MAX_TOOL_LINE_BYTES
    ))
}

/// Binds a tool call's arguments by the registry's parameters, asks the server to carry it
/// out, and turns the answer into Python objects (JSON objects become attribute objects).
fn call_tool(spec: &'static ToolSpec, args: FuncArgs, vm: &VirtualMachine) -> PyResult {
    // Refused before anything is copied: converting and encoding a 40 MB argument takes
    // seconds of a snippet's time in a debug build, and the answer would be the same.
    let text_bytes = text_argument_bytes(&args);
    if text_bytes > protocol::MAX_TOOL_LINE_BYTES {
        return Err(too_large(spec, "at least ", text_bytes, vm));
    }
    let named = bind_args(spec, args, vm)?;
    let (exec, call) = STATE.with(|state| {
        let mut state = state.borrow_mut();
        state.calls += 1;
        (state.exec, state.calls)
    });
    let mut line = FromWorker::Tool {
        exec,
        call,
        tool: spec.name.to_owned(),
        args: named,
    }
    .to_line();
    if line.len() > protocol::MAX_TOOL_LINE_BYTES {
        // Not sent: the call number is free again.
        STATE.with(|state| state.borrow_mut().calls -= 1);
        return Err(too_large(spec, "", line.len(), vm));
    }
    line.push('\n');
    send_line(&line);
    drop(line);
    match receive() {
        Some(ToWorker::ToolResult {
            call: answered,
            ok: true,
            value,
            ..
        }) if answered == call => json::to_py_objects(vm, &value),
        Some(ToWorker::ToolResult {
            call: answered,
            ok: false,
            error,
            ..
        }) if answered == call => {
            let err = error.unwrap_or(WireError {
                type_name: "RuntimeError".to_owned(),
                message: "tool failed".to_owned(),
                line: None,
            });
            Err(new_exception(vm, &err.type_name, &err.message))
        }
        // The server hung up or is out of step: nothing sensible can go on.
        _ => std::process::exit(0),
    }
}

fn bind_args(
    spec: &ToolSpec,
    args: FuncArgs,
    vm: &VirtualMachine,
) -> PyResult<serde_json::Map<String, serde_json::Value>> {
    let name = spec.name;
    if args.args.len() > spec.params.len() {
        return Err(vm.new_type_error(format!(
            "{name}() takes {} positional arguments but {} were given",
            spec.params.len(),
            args.args.len()
        )));
    }
    let mut slots: Vec<Option<PyObjectRef>> = vec![None; spec.params.len()];
    for (idx, value) in args.args.into_iter().enumerate() {
        slots[idx] = Some(value);
    }
    for (key, value) in args.kwargs {
        let Some(idx) = spec.params.iter().position(|param| param.name == key) else {
            return Err(vm.new_type_error(format!(
                "{name}() got an unexpected keyword argument '{key}'"
            )));
        };
        if slots[idx].is_some() {
            return Err(
                vm.new_type_error(format!("{name}() got multiple values for argument '{key}'"))
            );
        }
        slots[idx] = Some(value);
    }
    let mut res = serde_json::Map::new();
    for (param, slot) in spec.params.iter().zip(slots) {
        let value = match slot {
            Some(value) => convert_arg(name, param.name, param.ty, &value, vm)?,
            None => match param.default {
                // Defaults are left out, as the caller wrote the call.
                Some(ParamDefault::None) | Some(_) => continue,
                None => {
                    return Err(vm.new_type_error(format!(
                        "{name}() missing 1 required positional argument: '{}'",
                        param.name
                    )));
                }
            },
        };
        res.insert(param.name.to_owned(), value);
    }
    Ok(res)
}

fn convert_arg(
    tool: &str,
    param: &str,
    ty: ParamType,
    value: &PyObjectRef,
    vm: &VirtualMachine,
) -> PyResult<serde_json::Value> {
    let wrong = |expected: &str| {
        vm.new_type_error(format!(
            "{tool}() argument '{param}' must be {expected}, not {}",
            value.class().name()
        ))
    };
    let as_str = |value: &PyObjectRef| {
        value
            .downcast_ref::<PyStr>()
            .map(|text| text.to_string_lossy().into_owned())
    };
    match ty {
        ParamType::Str => as_str(value)
            .map(serde_json::Value::String)
            .ok_or_else(|| wrong("str")),
        ParamType::OptStr if vm.is_none(value) => Ok(serde_json::Value::Null),
        ParamType::OptStr => as_str(value)
            .map(serde_json::Value::String)
            .ok_or_else(|| wrong("str or None")),
        ParamType::Int => {
            let int = value.downcast_ref::<PyInt>().ok_or_else(|| wrong("int"))?;
            let n: i64 = int.try_to_primitive(vm)?;
            Ok(serde_json::Value::from(n))
        }
        ParamType::Bool => {
            if value.is(&vm.ctx.true_value) {
                Ok(serde_json::Value::Bool(true))
            } else if value.is(&vm.ctx.false_value) {
                Ok(serde_json::Value::Bool(false))
            } else {
                Err(wrong("bool"))
            }
        }
        ParamType::OptStrList if vm.is_none(value) => Ok(serde_json::Value::Null),
        ParamType::OptStrList => {
            let items: Vec<PyObjectRef> = if let Some(list) = value.downcast_ref::<PyList>() {
                list.borrow_vec().to_vec()
            } else if let Some(tuple) = value.downcast_ref::<PyTuple>() {
                tuple.as_slice().to_vec()
            } else {
                return Err(wrong("list[str] or None"));
            };
            items
                .iter()
                .map(|item| {
                    as_str(item)
                        .map(serde_json::Value::String)
                        .ok_or_else(|| wrong("list[str] or None"))
                })
                .collect::<PyResult<Vec<_>>>()
                .map(serde_json::Value::Array)
        }
    }
}

/// An exception of the class called `type_name`, built the safe way for its kind (the
/// generic constructor panics on OSError subclasses).
pub(crate) fn new_exception(
    vm: &VirtualMachine,
    type_name: &str,
    message: &str,
) -> PyBaseExceptionRef {
    let excs = &vm.ctx.exceptions;
    let os_type = match type_name {
        "FileNotFoundError" => Some(excs.file_not_found_error),
        "PermissionError" => Some(excs.permission_error),
        "IsADirectoryError" => Some(excs.is_a_directory_error),
        "NotADirectoryError" => Some(excs.not_a_directory_error),
        "FileExistsError" => Some(excs.file_exists_error),
        "TimeoutError" => Some(excs.timeout_error),
        "OSError" => Some(excs.os_error),
        _ => None,
    };
    if let Some(os_type) = os_type {
        return vm
            .new_os_subtype_error(os_type.to_owned(), None, message.to_owned())
            .upcast();
    }
    if type_name == "UnicodeDecodeError" {
        let args = (
            vm.ctx.new_str("utf-8"),
            vm.ctx.new_bytes(vec![0xff]),
            vm.ctx.new_int(0),
            vm.ctx.new_int(1),
            vm.ctx.new_str(message.to_owned()),
        );
        if let Ok(exc) = excs.unicode_decode_error.as_object().call(args, vm)
            && let Ok(exc) = exc.downcast::<PyBaseException>()
        {
            return exc;
        }
    }
    let plain = match type_name {
        "ValueError" => excs.value_error,
        "TypeError" => excs.type_error,
        "NameError" => excs.name_error,
        "NotImplementedError" => excs.not_implemented_error,
        "KeyboardInterrupt" => excs.keyboard_interrupt,
        "KeyError" => excs.key_error,
        "MemoryError" => excs.memory_error,
        _ => excs.runtime_error,
    };
    let message = if plain.is(excs.runtime_error) && type_name != "RuntimeError" {
        format!("{type_name}: {message}")
    } else {
        message.to_owned()
    };
    vm.new_exception_msg(plain.to_owned(), message.into())
}

/// Reads `PyDict` and friends for `json` (shared helpers).
pub(crate) fn dict_items(dict: &PyRef<PyDict>) -> Vec<(PyObjectRef, PyObjectRef)> {
    dict.clone().into_iter().collect()
}

pub(crate) fn float_value(value: &PyObjectRef) -> Option<f64> {
    value.downcast_ref::<PyFloat>().map(|float| float.to_f64())
}
