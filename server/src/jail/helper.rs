//! The helper's side of every platform: `punie jail-exec`. Its stdin is the control socket
//! (the plan comes in, reports go out); its stdout and stderr are the command's, and it
//! writes nothing there itself. The platform module does the containing.

use std::ffi::{CStr, CString};
use std::io::{self, BufRead, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::process::ExitCode;

use super::{Plan, Report};

pub(super) fn main() -> ExitCode {
    // Nothing the server inherited reaches the command: every descriptor but stdin, stdout and
    // stderr closes on exec (a session's pipe is made the command's fd 0 below, without it).
    super::close_descriptors_from(3, super::Close::OnExec);
    // The control socket moves off fd 0 (close-on-exec); once the plan is read, fd 0 becomes
    // what the command reads: /dev/null, or a session's pipe.
    // SAFETY: fcntl duplicates fd 0 into a new descriptor that nothing else owns.
    let raw = unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3) };
    if raw < 0 {
        return ExitCode::FAILURE;
    }
    // SAFETY: `raw` is ours alone.
    let control = unsafe { UnixStream::from_raw_fd(raw) };
    let mut line = Vec::new();
    let read = io::BufReader::new(&control)
        .take(16 * 1024 * 1024)
        .read_until(b'\n', &mut line);
    let plan = match read
        .ok()
        .and_then(|_| serde_json::from_slice::<Plan>(&line).ok())
    {
        Some(plan) if !plan.argv.is_empty() => plan,
        _ => return ExitCode::FAILURE,
    };
    if set_command_stdin(plan.stdin_fd).is_err() {
        return ExitCode::FAILURE;
    }
    if let Err(err) = prepare_private_dir(&plan) {
        send(
            &control,
            &Report::Refused {
                message: format!("cannot prepare the command's private directory: {err}"),
            },
        );
        return ExitCode::SUCCESS;
    }
    #[cfg(target_os = "linux")]
    super::linux::contain(&plan, &control);
    #[cfg(target_os = "macos")]
    super::macos::contain(&plan, &control);
    ExitCode::SUCCESS
}

/// Makes fd 0, what the command reads, the server's pipe `stdin_fd` (a session) or
/// `/dev/null`.
fn set_command_stdin(stdin_fd: Option<i32>) -> io::Result<()> {
    let null;
    let source = match stdin_fd {
        Some(fd) => fd,
        None => {
            null = std::fs::File::open("/dev/null")?;
            null.as_raw_fd()
        }
    };
    // SAFETY: dup2 onto fd 0 from a descriptor we hold; the server's pipe is then closed
    // here (its copy on fd 0 stays), `/dev/null` when `null` is dropped.
    unsafe {
        if libc::dup2(source, 0) < 0 {
            return Err(io::Error::last_os_error());
        }
        if stdin_fd.is_some() {
            libc::close(source);
        }
    }
    Ok(())
}

/// Sends one report to the server (a failure means the server is gone: nothing to do).
pub(super) fn send(control: &UnixStream, report: &Report) {
    let mut line = serde_json::to_vec(report).expect("a report serializes");
    line.push(b'\n');
    let _ = (&*control).write_all(&line);
}

/// Makes `home/` and `tmp/` in the private directory, and links each readable entry under
/// the real home into `home/`, so that toolchains find `~/.cargo` or `~/.local/bin` while
/// whatever else a program writes under `~` lands in a throwaway directory.
fn prepare_private_dir(plan: &Plan) -> io::Result<()> {
    let home = plan.private_dir.join("home");
    std::fs::create_dir(&home)?;
    std::fs::create_dir(plan.private_dir.join("tmp"))?;
    let Some(real_home) = &plan.real_home else {
        return Ok(());
    };
    for rel in &plan.home_links {
        let target = real_home.join(rel);
        if std::fs::symlink_metadata(&target).is_err() {
            continue;
        }
        let link = home.join(rel);
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // An entry listed twice, or one inside another, is already there.
        let _ = std::os::unix::fs::symlink(&target, &link);
    }
    Ok(())
}

/// The plan's working directory, as the command's side compares it with `getcwd`
/// ([`started_in`]); refused where it holds a NUL byte, which no directory's path does.
pub(super) fn planned_cwd(plan: &Plan) -> Result<CString, Report> {
    CString::new(plan.cwd.as_os_str().as_bytes()).map_err(|_| Report::Refused {
        message: "run_command: the working directory's path holds a NUL byte".to_owned(),
    })
}

/// The error the command's start fails with, between `fork` and `exec`, where it is not in
/// the planned directory. `EXDEV`: neither `chdir` nor `execve` gives it.
const ELSEWHERE: i32 = libc::EXDEV;

/// Checks, in the command's process after `chdir` and before `exec`, that it is in the
/// directory the server resolved and judged (`Plan::cwd`, canonical): `chdir` follows links,
/// and one put on the path after the judgement (a directory swapped for a link to outside the
/// workspace while the question was open) would start the command out there. Only system
/// calls, as between `fork` and `exec` everything must be.
pub(super) fn started_in(planned: &CStr) -> io::Result<()> {
    let mut here = [0 as libc::c_char; libc::PATH_MAX as usize + 1];
    // SAFETY: `getcwd` writes at most `here.len()` bytes, its NUL included, into `here`.
    let got = unsafe { libc::getcwd(here.as_mut_ptr(), here.len()) };
    // SAFETY: where it did not fail, `here` holds a NUL-terminated path.
    if got.is_null() || unsafe { CStr::from_ptr(got) } != planned {
        return Err(io::Error::from_raw_os_error(ELSEWHERE));
    }
    Ok(())
}

/// The report for a start that [`started_in`] stopped, else `None`.
pub(super) fn elsewhere(plan: &Plan, err: &io::Error) -> Option<Report> {
    (err.raw_os_error() == Some(ELSEWHERE)).then(|| Report::Refused {
        message: format!(
            "run_command: the working directory {} changed after the command was checked (a \
             directory on its path was replaced by a link), so nothing was run",
            plan.cwd.display()
        ),
    })
}
