//! The sandbox's `json` module (`loads`, `dumps`), written in Rust: there is no stdlib.
//! Output matches CPython's defaults (`", "` and `": "` separators, `ensure_ascii`).

use std::fmt::Write as _;

use rustpython_vm::builtins::{PyDict, PyInt, PyList, PyStr, PyTuple};
use rustpython_vm::function::FuncArgs;
use rustpython_vm::{AsObject, PyObjectRef, PyResult, VirtualMachine};
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// Deepest nesting `dumps` and `loads` accept.
const MAX_DEPTH: usize = 100;

/// A fresh `json` module (one per snippet, so that one snippet's changes to it never reach
/// the next).
pub(super) fn module(vm: &VirtualMachine) -> PyObjectRef {
    let dict = vm.ctx.new_dict();
    let _ = dict.set_item("loads", vm.new_function("loads", loads).into(), vm);
    let _ = dict.set_item("dumps", vm.new_function("dumps", dumps).into(), vm);
    let _ = dict.set_item(
        "JSONDecodeError",
        vm.ctx.exceptions.value_error.to_owned().into(),
        vm,
    );
    vm.new_module("json", dict, None).into()
}

fn loads(args: FuncArgs, vm: &VirtualMachine) -> PyResult {
    let text = match args.args.first() {
        Some(text) => match text.downcast_ref::<PyStr>() {
            Some(text) => text.to_string_lossy().into_owned(),
            None => {
                return Err(vm.new_type_error(format!(
                    "the JSON object must be str, not {}",
                    text.class().name()
                )));
            }
        },
        None => {
            return Err(vm.new_type_error("loads() missing 1 required positional argument: 's'"));
        }
    };
    let mut deserializer = serde_json::Deserializer::from_str(&text);
    let value = PySeed { vm, depth: 0 }
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value));
    value.map_err(|err| vm.new_value_error(format!("{err}")))
}

/// Turns a tool result into Python objects: JSON objects become attribute objects
/// (`result.success`), arrays lists.
pub(crate) fn to_py_objects(vm: &VirtualMachine, value: &serde_json::Value) -> PyResult {
    Ok(match value {
        serde_json::Value::Null => vm.ctx.none(),
        serde_json::Value::Bool(flag) => vm.ctx.new_bool(*flag).into(),
        serde_json::Value::Number(number) => number_to_py(vm, number),
        serde_json::Value::String(text) => vm.ctx.new_str(text.as_str()).into(),
        serde_json::Value::Array(items) => {
            let items = items
                .iter()
                .map(|item| to_py_objects(vm, item))
                .collect::<PyResult<Vec<_>>>()?;
            vm.ctx.new_list(items).into()
        }
        serde_json::Value::Object(map) => {
            let obj = vm.ctx.types.namespace_type.as_object().call((), vm)?;
            for (key, item) in map {
                // `__type__` tags the result type in fixtures; attributes never start with `_`.
                if key.starts_with('_') {
                    continue;
                }
                let name = vm.ctx.new_str(key.as_str());
                obj.set_attr(&*name, to_py_objects(vm, item)?, vm)?;
            }
            obj
        }
    })
}

fn number_to_py(vm: &VirtualMachine, number: &serde_json::Number) -> PyObjectRef {
    if let Some(n) = number.as_i64() {
        vm.ctx.new_int(n).into()
    } else if let Some(n) = number.as_u64() {
        vm.ctx.new_int(n).into()
    } else {
        vm.ctx.new_float(number.as_f64().unwrap_or(f64::NAN)).into()
    }
}

struct PySeed<'vm> {
    vm: &'vm VirtualMachine,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for PySeed<'_> {
    type Value = PyObjectRef;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<PyObjectRef, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PySeed<'_> {
    type Value = PyObjectRef;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<PyObjectRef, E> {
        Ok(self.vm.ctx.new_bool(value).into())
    }

    fn visit_i64<E>(self, value: i64) -> Result<PyObjectRef, E> {
        Ok(self.vm.ctx.new_int(value).into())
    }

    fn visit_u64<E>(self, value: u64) -> Result<PyObjectRef, E> {
        Ok(self.vm.ctx.new_int(value).into())
    }

    fn visit_f64<E>(self, value: f64) -> Result<PyObjectRef, E> {
        Ok(self.vm.ctx.new_float(value).into())
    }

    fn visit_str<E>(self, value: &str) -> Result<PyObjectRef, E> {
        Ok(self.vm.ctx.new_str(value).into())
    }

    fn visit_unit<E>(self) -> Result<PyObjectRef, E> {
        Ok(self.vm.ctx.none())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PyObjectRef, A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(serde::de::Error::custom("JSON nested too deeply"));
        }
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(PySeed {
            vm: self.vm,
            depth: self.depth + 1,
        })? {
            items.push(item);
        }
        Ok(self.vm.ctx.new_list(items).into())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PyObjectRef, A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(serde::de::Error::custom("JSON nested too deeply"));
        }
        let dict = self.vm.ctx.new_dict();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(PySeed {
                vm: self.vm,
                depth: self.depth + 1,
            })?;
            dict.set_item(key.as_str(), value, self.vm)
                .map_err(|_| serde::de::Error::custom("cannot build the dict"))?;
        }
        Ok(dict.into())
    }
}

struct DumpOptions {
    indent: Option<String>,
    sort_keys: bool,
    ensure_ascii: bool,
}

fn dumps(args: FuncArgs, vm: &VirtualMachine) -> PyResult {
    let Some(obj) = args.args.first() else {
        return Err(vm.new_type_error("dumps() missing 1 required positional argument: 'obj'"));
    };
    let mut options = DumpOptions {
        indent: None,
        sort_keys: false,
        ensure_ascii: true,
    };
    for (name, value) in &args.kwargs {
        match name.as_str() {
            "indent" if vm.is_none(value) => {}
            "indent" => {
                if let Some(n) = value.downcast_ref::<PyInt>() {
                    let n: usize = n.try_to_primitive(vm)?;
                    options.indent = Some(" ".repeat(n.min(64)));
                } else if let Some(text) = value.downcast_ref::<PyStr>() {
                    options.indent = Some(text.to_string_lossy().into_owned());
                } else {
                    return Err(vm.new_type_error("indent must be an int or a str"));
                }
            }
            "sort_keys" => options.sort_keys = value.clone().try_to_bool(vm)?,
            "ensure_ascii" => options.ensure_ascii = value.clone().try_to_bool(vm)?,
            "default" | "separators" | "cls" => {
                return Err(vm.new_type_error(format!(
                    "json.dumps({name}=...) is not supported in the sandbox"
                )));
            }
            _ => {}
        }
    }
    let mut res = String::new();
    write_value(vm, obj, &options, 0, &mut res)?;
    Ok(vm.ctx.new_str(res).into())
}

fn write_value(
    vm: &VirtualMachine,
    obj: &PyObjectRef,
    options: &DumpOptions,
    depth: usize,
    res: &mut String,
) -> PyResult<()> {
    if depth > MAX_DEPTH {
        return Err(vm.new_recursion_error(
            "maximum recursion depth exceeded while encoding a JSON object".to_owned(),
        ));
    }
    if vm.is_none(obj) {
        res.push_str("null");
    } else if obj.is(&vm.ctx.true_value) {
        res.push_str("true");
    } else if obj.is(&vm.ctx.false_value) {
        res.push_str("false");
    } else if let Some(text) = obj.downcast_ref::<PyStr>() {
        write_string(&text.to_string_lossy(), options.ensure_ascii, res);
    } else if obj.downcast_ref::<PyInt>().is_some() {
        res.push_str(&obj.str(vm)?.to_string_lossy());
    } else if let Some(value) = super::float_value(obj) {
        if value.is_nan() {
            res.push_str("NaN");
        } else if value.is_infinite() {
            res.push_str(if value > 0.0 { "Infinity" } else { "-Infinity" });
        } else {
            res.push_str(&obj.repr(vm)?.to_string_lossy());
        }
    } else if obj.downcast_ref::<PyList>().is_some() || obj.downcast_ref::<PyTuple>().is_some() {
        let items: Vec<PyObjectRef> = match obj.downcast_ref::<PyList>() {
            Some(list) => list.borrow_vec().to_vec(),
            None => obj
                .downcast_ref::<PyTuple>()
                .map(|tuple| tuple.as_slice().to_vec())
                .unwrap_or_default(),
        };
        if items.is_empty() {
            res.push_str("[]");
            return Ok(());
        }
        res.push('[');
        for (idx, item) in items.iter().enumerate() {
            separator(idx, options, depth + 1, res);
            write_value(vm, item, options, depth + 1, res)?;
        }
        close(options, depth, res);
        res.push(']');
    } else if let Some(dict) = obj.downcast_ref::<PyDict>() {
        let mut items: Vec<(String, PyObjectRef)> = Vec::new();
        for (key, value) in super::dict_items(&dict.to_owned()) {
            items.push((json_key(vm, &key)?, value));
        }
        if items.is_empty() {
            res.push_str("{}");
            return Ok(());
        }
        if options.sort_keys {
            items.sort_by(|a, b| a.0.cmp(&b.0));
        }
        res.push('{');
        for (idx, (key, value)) in items.iter().enumerate() {
            separator(idx, options, depth + 1, res);
            write_string(key, options.ensure_ascii, res);
            res.push_str(": ");
            write_value(vm, value, options, depth + 1, res)?;
        }
        close(options, depth, res);
        res.push('}');
    } else {
        return Err(vm.new_type_error(format!(
            "Object of type {} is not JSON serializable",
            obj.class().name()
        )));
    }
    Ok(())
}

fn separator(idx: usize, options: &DumpOptions, depth: usize, res: &mut String) {
    match &options.indent {
        Some(indent) => {
            if idx > 0 {
                res.push(',');
            }
            res.push('\n');
            res.push_str(&indent.repeat(depth));
        }
        None => {
            if idx > 0 {
                res.push_str(", ");
            }
        }
    }
}

fn close(options: &DumpOptions, depth: usize, res: &mut String) {
    if let Some(indent) = &options.indent {
        res.push('\n');
        res.push_str(&indent.repeat(depth));
    }
}

fn json_key(vm: &VirtualMachine, key: &PyObjectRef) -> PyResult<String> {
    if let Some(text) = key.downcast_ref::<PyStr>() {
        return Ok(text.to_string_lossy().into_owned());
    }
    let mut probe = String::new();
    let plain = DumpOptions {
        indent: None,
        sort_keys: false,
        ensure_ascii: false,
    };
    if vm.is_none(key) || key.downcast_ref::<PyInt>().is_some() || super::float_value(key).is_some()
    {
        write_value(vm, key, &plain, 0, &mut probe)?;
        return Ok(probe);
    }
    Err(vm.new_type_error(format!(
        "keys must be str, int, float, bool or None, not {}",
        key.class().name()
    )))
}

fn write_string(text: &str, ensure_ascii: bool, res: &mut String) {
    res.push('"');
    for ch in text.chars() {
        match ch {
            '"' => res.push_str("\\\""),
            '\\' => res.push_str("\\\\"),
            '\n' => res.push_str("\\n"),
            '\r' => res.push_str("\\r"),
            '\t' => res.push_str("\\t"),
            '\u{8}' => res.push_str("\\b"),
            '\u{c}' => res.push_str("\\f"),
            ch if (ch as u32) < 0x20 || (ensure_ascii && !ch.is_ascii()) => {
                let mut units = [0u16; 2];
                for unit in ch.encode_utf16(&mut units) {
                    let _ = write!(res, "\\u{unit:04x}");
                }
            }
            ch => res.push(ch),
        }
    }
    res.push('"');
}
