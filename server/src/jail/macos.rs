//! The helper on macOS: the command runs under `sandbox-exec -p <profile>` (Seatbelt, see
//! `seatbelt`) in a process group of its own, which is killed when the command ends or the
//! server stops it. macOS has no PID namespace and no subreaper: a descendant that leaves
//! the process group (`setsid`) is not tracked (docs/sandbox.md). Not compiled elsewhere.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::helper::{self, send};
use super::seatbelt::{ProfilePaths, profile};
use super::{Layers, Plan, Report};

pub(super) fn contain(plan: &Plan, control: &UnixStream) {
    let (program, args) = plan.argv.split_first().expect("a plan has a program");
    if find_program(program, plan).is_none() {
        send(
            control,
            &Report::NotFound {
                message: format!("command not found: '{program}'"),
            },
        );
        return;
    }
    let canonical = |paths: &[PathBuf]| -> Vec<PathBuf> {
        paths
            .iter()
            .filter_map(|path| path.canonicalize().ok())
            .collect()
    };
    let mut secrets = plan.secrets.clone();
    secrets.extend(canonical(&plan.secrets));
    let paths = ProfilePaths {
        readable: canonical(&plan.readable),
        writable: canonical(&plan.writable),
        read_only: canonical(&plan.read_only),
        secrets,
    };
    let planned_cwd = match helper::planned_cwd(plan) {
        Ok(cwd) => cwd,
        Err(refused) => {
            send(control, &refused);
            return;
        }
    };
    let mut command = Command::new("/usr/bin/sandbox-exec");
    command
        .arg("-p")
        .arg(profile(&paths, plan.network))
        .arg("--")
        .arg(program)
        .args(args)
        .env_clear()
        .envs(plan.env.iter().map(|(name, value)| (name, value)))
        .current_dir(&plan.cwd)
        .process_group(0);
    // SAFETY: `started_in` makes only system calls (no allocation, no locks).
    unsafe {
        command.pre_exec(move || helper::started_in(&planned_cwd));
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) => {
            let report = helper::elsewhere(plan, &err).unwrap_or_else(|| Report::Refused {
                message: format!("cannot run sandbox-exec: {err}"),
            });
            send(control, &report);
            return;
        }
    };
    let group = child.id() as libc::pid_t;
    send(
        control,
        &Report::Started {
            layers: Layers {
                platform: "macos".to_owned(),
                seatbelt: true,
                ..Layers::default()
            },
        },
    );
    // End-of-file on the control socket: the server stops the command (or is gone).
    let watcher = control.try_clone();
    std::thread::spawn(move || {
        if let Ok(mut watcher) = watcher {
            let mut sink = [0u8; 256];
            while matches!(watcher.read(&mut sink), Ok(n) if n > 0) {}
        }
        // SAFETY: signals the process group we created.
        unsafe { libc::killpg(group, libc::SIGKILL) };
    });
    if let Ok(status) = child.wait() {
        send(
            control,
            &Report::Exited {
                code: status.code(),
                signal: status.signal(),
            },
        );
    }
    // SAFETY: signals the process group we created.
    unsafe { libc::killpg(group, libc::SIGKILL) };
}

/// `program` as `execvp` would find it on the plan's `PATH`.
fn find_program(program: &str, plan: &Plan) -> Option<PathBuf> {
    if program.contains('/') {
        let path = plan.cwd.join(program);
        return path.is_file().then_some(path);
    }
    let path = plan
        .env
        .iter()
        .find(|(name, _)| name == "PATH")
        .and_then(|(_, value)| value.to_str())
        .unwrap_or("/usr/bin:/bin");
    path.split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|candidate| candidate.is_file())
}
