//! The macOS profile of a command (Seatbelt, run through `sandbox-exec -p`): the same
//! outcomes as Landlock on Linux. Closed by default; reads of the readable paths and of what
//! the dynamic loader and libSystem need; writes only in the workspace and the private
//! directory; never a secret (later rules win in SBPL, so the denials come last); signals
//! and process information only within the sandbox; the network only when allowed, and never
//! Unix-domain sockets. Pure: builds text.

use std::fmt::Write;
use std::path::{Path, PathBuf};

/// The paths a profile is about, already canonical (`/tmp` is `/private/tmp` on macOS, and
/// Seatbelt matches resolved paths).
#[derive(Debug, Clone, Default)]
pub(super) struct ProfilePaths {
    pub readable: Vec<PathBuf>,
    pub writable: Vec<PathBuf>,
    /// Protected paths inside the writable ones.
    pub read_only: Vec<PathBuf>,
    pub secrets: Vec<PathBuf>,
}

/// What every process needs to start on macOS (the loader, frameworks, time zones, user
/// lookup) and what is harmless (sysctl reads, preferences).
const BASE: &str = r#"(version 1)
(deny default)
(allow process-exec process-fork)
(allow signal (target same-sandbox))
(allow process-info* (target same-sandbox))
(allow sysctl-read)
(allow mach-host*)
(allow user-preference-read)
(allow ipc-posix-sem)
(allow pseudo-tty)
(allow file-read-metadata)
(allow file-read* (literal "/") (subpath "/System") (subpath "/Library/Apple")
  (subpath "/usr/lib") (subpath "/usr/share") (subpath "/private/var/db/timezone")
  (subpath "/Library/Preferences") (literal "/dev/random") (literal "/dev/urandom")
  (literal "/dev/autofs_nowait") (subpath "/dev/fd"))
(allow file-map-executable (subpath "/System") (subpath "/Library/Apple") (subpath "/usr/lib"))
(allow file-read* file-write-data file-ioctl (literal "/dev/null") (literal "/dev/zero")
  (literal "/dev/dtracehelper"))
(allow mach-lookup
  (global-name "com.apple.system.opendirectoryd.libinfo")
  (global-name "com.apple.system.opendirectoryd.membership")
  (global-name "com.apple.system.DirectoryService.libinfo_v1")
  (global-name "com.apple.system.logger")
  (global-name "com.apple.logd")
  (global-name "com.apple.diagnosticd")
  (global-name "com.apple.cfprefsd.daemon")
  (global-name "com.apple.cfprefsd.agent")
  (global-name "com.apple.bsd.dirhelper")
  (global-name "com.apple.trustd")
  (global-name "com.apple.trustd.agent"))
"#;

/// The profile of one command.
pub(super) fn profile(paths: &ProfilePaths, network: bool) -> String {
    let mut res = BASE.to_owned();
    push_rule(
        &mut res,
        "allow file-read* file-map-executable",
        &paths.readable,
    );
    push_rule(&mut res, "allow file-read* file-write*", &paths.writable);
    if network {
        res.push_str(
            "(allow system-socket)\n(allow network-outbound (remote ip))\n(allow network-inbound (local ip))\n(allow network-bind (local ip))\n",
        );
    }
    // Last, so that they win over every allow above.
    push_rule(&mut res, "deny file-write*", &paths.read_only);
    push_rule(&mut res, "deny file-read* file-write*", &paths.secrets);
    res
}

fn push_rule(res: &mut String, head: &str, paths: &[PathBuf]) {
    if paths.is_empty() {
        return;
    }
    let _ = write!(res, "({head}");
    for path in paths {
        let _ = write!(res, "\n  (subpath {})", quoted(path));
    }
    res.push_str(")\n");
}

/// An SBPL string literal.
fn quoted(path: &Path) -> String {
    let mut res = String::from("\"");
    for ch in path.to_string_lossy().chars() {
        match ch {
            '"' | '\\' => {
                res.push('\\');
                res.push(ch);
            }
            _ => res.push(ch),
        }
    }
    res.push('"');
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_after_every_allow_and_paths_are_quoted() {
        let paths = ProfilePaths {
            readable: vec![PathBuf::from("/usr"), PathBuf::from("/Users/me/.cargo")],
            writable: vec![PathBuf::from("/Users/me/my \"repo\"")],
            read_only: vec![PathBuf::from("/Users/me/my \"repo\"/.git")],
            secrets: vec![PathBuf::from("/Users/me/.ssh")],
        };
        let text = profile(&paths, false);
        assert!(text.starts_with("(version 1)\n(deny default)\n"));
        assert!(
            text.contains("(subpath \"/Users/me/my \\\"repo\\\"\")"),
            "{text}"
        );
        let deny = text.find("(deny file-read* file-write*").unwrap();
        assert!(text.rfind("(allow").unwrap() < deny);
        assert!(text.ends_with("(subpath \"/Users/me/.ssh\"))\n"), "{text}");
        assert!(
            text.contains("(deny file-write*\n  (subpath \"/Users/me/my \\\"repo\\\"/.git\"))"),
            "{text}"
        );
        assert!(!text.contains("network-outbound"));
        assert!(profile(&paths, true).contains("(allow network-outbound (remote ip))"));
    }
}
