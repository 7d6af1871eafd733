//! The git configuration every jailed program gets, so that a repository's own configuration
//! (`.git/config`, its includes, `.gitattributes`' drivers) cannot make git start a program
//! the user never approved: a model that runs `git status` in a cloned repository whose
//! `core.fsmonitor` names `./.hook.sh` must get the status, not the hook.
//!
//! It travels in the environment (`GIT_CONFIG_COUNT`, `GIT_CONFIG_KEY_<n>`,
//! `GIT_CONFIG_VALUE_<n>`, git >= 2.31): these outrank every configuration file, every git a
//! command starts inherits them (a submodule's, a script's), and only a `-c` on a git command
//! line outranks them, which the user saw when approving it (an alias could carry one out of
//! sight, so aliases are switched off, below).
//!
//! **Fixed keys** ([`FIXED`]), for every program: each names a program or hook and has a
//! value that keeps git working: `core.fsmonitor=false` (the hook runs on every `status`),
//! `core.hooksPath=/dev/null` (hooks), `core.pager=cat` (no pager), `core.editor` and
//! `sequence.editor` `false` (an editor fails: there is no terminal), `core.askPass=` (no
//! program, and no terminal to ask on), `core.sshCommand=ssh` (the system's `ssh`),
//! `credential.helper=` (an empty value empties the list of helpers), `gpg.program`,
//! `gpg.openpgp.program`, `gpg.x509.program`, `gpg.ssh.program` and
//! `gpg.ssh.defaultKeyCommand` `false` (signing fails), `log.showSignature=false` (`log` ran
//! `gpg.program`), `interactive.diffFilter=` (none), and the two transports whose program the
//! configuration picks where no later value can override it: `ext::` URLs
//! (`protocol.ext.allow=never`: the URL is the command) and `git://` (`core.gitProxy`, whose
//! first match wins: `protocol.git.allow=never`). Other transports stay as the network
//! setting allows; what they run is fixed here or found by the scan.
//!
//! **Found keys**: a key whose name holds a driver, tool, alias or remote cannot be listed in
//! advance. Before a program whose file name is `git` runs, [`scan_argv`] lists git's
//! configuration as that command would read it (the same `-C`, `--git-dir`, `--work-tree`,
//! `-c`), jailed like the command, and [`found`] sets every key of [`SCAN_PATTERN`] to an
//! empty value, on which git runs nothing (a filter is skipped, an empty pager is none) or
//! fails ("cannot run"): `filter.*.clean/smudge/process` (and `required=false`),
//! `diff.*.command/textconv`, `diff.external`, `merge.*.driver`, `pager.*`, `alias.*` (`!`
//! runs a shell; any alias may carry `-c`), `trailer.*.command/cmd`,
//! `remote.*.uploadpack/receivepack`, `mergetool.*`/`difftool.*`/`browser.*`/`man.*`/
//! `guitool.*` `.cmd`/`.path`, `credential.*.helper`, `submodule.*.update` (`!command`),
//! `sendemail.*` commands and `smtpServer` (a path runs), `hook.*.command`,
//! `core.alternateRefsCommand`. `gc.recentObjectsHook` runs every value it is given, so one
//! more cannot switch it off: a git command under it does not run at all.
//!
//! **Submodules** have a configuration of their own (`.git/modules/<name>/config`), read by
//! the git that `status` or `diff` starts inside each populated submodule. A second scan,
//! [`submodules_scan_argv`], lists the same keys in every populated submodule, recursively
//! (`git submodule foreach`), and they are blanked with the rest: the names are global, so
//! blanking a submodule's `filter.x.clean` blanks the superproject's too, which is what the
//! scan would do anyway. `foreach` fails on a gitlink `.gitmodules` does not name (a nested
//! repository added by mistake), while `status` still runs a git inside it; defaults such as
//! `diff.ignoreSubmodules` would not keep it out, since `.gitmodules` and the command line
//! outrank them. So where the listing fails, every gitlink of the index ([`index_argv`],
//! [`gitlinks`]) is scanned where it is ([`scan_argv_within`]), and the populated ones
//! ([`prefix_argv`]) likewise, to a bounded depth and number. Without a gitlink (no work tree:
//! `git init`, `clone`, a bare repository), [`IGNORE_SUBMODULES`] keeps git out of submodules
//! for good measure.
//!
//! Not covered: a git that another program starts (`make`, `python x.py`, `env git`) gets the
//! fixed keys but no scan; such a program runs the repository's code by its nature, and the
//! dialog says which program it is.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

/// Keys set for every jailed program, with values that keep git working (the module doc
/// says why each).
pub(super) const FIXED: &[(&str, &str)] = &[
    ("core.fsmonitor", "false"),
    ("core.hooksPath", "/dev/null"),
    ("core.pager", "cat"),
    ("core.editor", "false"),
    ("sequence.editor", "false"),
    ("core.askPass", ""),
    ("core.sshCommand", "ssh"),
    ("credential.helper", ""),
    ("gpg.program", "false"),
    ("gpg.openpgp.program", "false"),
    ("gpg.x509.program", "false"),
    ("gpg.ssh.program", "false"),
    ("gpg.ssh.defaultKeyCommand", "false"),
    ("log.showSignature", "false"),
    ("interactive.diffFilter", ""),
    ("protocol.ext.allow", "never"),
    ("protocol.git.allow", "never"),
];

/// The keys the scan blanks, as git lists them (section and key lower case, a subsection as
/// written): a POSIX extended regular expression for `git config --get-regexp`.
pub(super) const SCAN_PATTERN: &str = concat!(
    r"^(filter\..+\.(clean|smudge|process)",
    r"|diff\..+\.(command|textconv)|diff\.external",
    r"|merge\..+\.driver|pager\..+|alias\..+|trailer\..+\.(command|cmd)",
    r"|remote\..+\.(uploadpack|receivepack)",
    r"|(mergetool|difftool|browser|man|guitool)\..+\.(cmd|path)",
    r"|credential\..+\.helper|submodule\..+\.update|hook\..+\.command",
    r"|sendemail\.(.+\.)?(smtpserver|sendmailcmd|tocmd|cccmd|headercmd)",
    r"|core\.alternaterefscommand|gc\.recentobjectshook)$",
);

/// Keys that run every value they are given: a later empty value adds one more rather than
/// switching them off.
const CANNOT_SWITCH_OFF: &[&str] = &["gc.recentobjectshook"];

/// Keys that keep git out of submodules, for a command in a repository without any.
pub(super) const IGNORE_SUBMODULES: &[(&str, &str)] = &[
    ("diff.ignoreSubmodules", "all"),
    ("submodule.recurse", "false"),
];

/// Global options before git's subcommand that choose which configuration it reads, and
/// whether each takes the next argument as its value when written without `=`.
const LOCATING_OPTIONS: &[(&str, bool)] = &[
    ("-C", true),
    ("-c", true),
    ("--config-env", true),
    ("--git-dir", true),
    ("--work-tree", true),
    ("--bare", false),
];
/// Other global options that take the next argument as their value.
const OPTIONS_WITH_VALUE: &[&str] = &["--namespace", "--super-prefix", "--attr-source"];

/// The environment that sets [`FIXED`] and then `found` (from [`found`]).
pub(super) fn env(found: &[(String, String)]) -> Vec<(String, OsString)> {
    let pairs: Vec<(&str, &str)> = FIXED
        .iter()
        .copied()
        .chain(
            found
                .iter()
                .map(|(key, value)| (key.as_str(), value.as_str())),
        )
        .collect();
    let mut res = vec![(
        "GIT_CONFIG_COUNT".to_owned(),
        pairs.len().to_string().into(),
    )];
    for (n, (key, value)) in pairs.into_iter().enumerate() {
        res.push((format!("GIT_CONFIG_KEY_{n}"), key.into()));
        res.push((format!("GIT_CONFIG_VALUE_{n}"), value.into()));
    }
    res
}

/// Whether `name` is an environment variable [`env`] makes.
pub(super) fn is_ours(name: &str) -> bool {
    name == "GIT_CONFIG_COUNT"
        || name.starts_with("GIT_CONFIG_KEY_")
        || name.starts_with("GIT_CONFIG_VALUE_")
}

/// The argv that lists the keys of [`SCAN_PATTERN`] as `argv` would read its configuration,
/// when `argv` runs git (its program's file name is `git`); `None` otherwise.
pub(super) fn scan_argv(argv: &[String]) -> Option<Vec<String>> {
    scan_argv_within(argv, &[])
}

/// [`scan_argv`] for every populated submodule of the repository `argv` would work in,
/// recursively; exits 0 when it could list them (none is fine), otherwise not.
pub(super) fn submodules_scan_argv(argv: &[String]) -> Option<Vec<String>> {
    let mut res = git_with_locating_options(argv)?;
    // Run inside each submodule, a relative program path would name a file there.
    let program = if res[0].starts_with('/') {
        &res[0]
    } else {
        "git"
    };
    // A submodule without a matching key makes `git config` exit 1, which would end the walk:
    // the command is one shell word so that `|| :` can follow it.
    let list_keys = format!(
        "{} config -z --name-only --get-regexp {} || :",
        shell_quoted(program),
        shell_quoted(SCAN_PATTERN)
    );
    res.extend(["submodule", "foreach", "--quiet", "--recursive"].map(str::to_owned));
    res.push(list_keys);
    Some(res)
}

/// The argv that lists every entry of the index of the repository `argv` would work in, or
/// of the gitlink `within` leads to (each path relative to the one before): `ls-files
/// --stage` from that repository's top, for [`gitlinks`].
pub(super) fn index_argv(argv: &[String], within: &[String]) -> Option<Vec<String>> {
    let mut res = git_within(argv, within)?;
    res.extend(["ls-files", "-z", "--stage", "--", ":/"].map(str::to_owned));
    Some(res)
}

/// [`scan_argv`] in the gitlink `within` leads to.
pub(super) fn scan_argv_within(argv: &[String], within: &[String]) -> Option<Vec<String>> {
    let mut res = git_within(argv, within)?;
    res.extend(["config", "-z", "--name-only", "--get-regexp", SCAN_PATTERN].map(str::to_owned));
    Some(res)
}

/// The argv that prints the path from the top of the repository `within` is in to it: an
/// empty line when `within` is a populated submodule's top (not a folder of the repository
/// around it, where git went looking upwards).
pub(super) fn prefix_argv(argv: &[String], within: &[String]) -> Option<Vec<String>> {
    let mut res = git_within(argv, within)?;
    res.extend(["rev-parse", "--show-prefix"].map(str::to_owned));
    Some(res)
}

/// The gitlinks (submodules, listed in `.gitmodules` or not) of `ls-files -z --stage` output:
/// their paths, relative to where it ran.
pub(super) fn gitlinks(listed: &[u8]) -> Vec<String> {
    listed
        .split(|byte| *byte == 0)
        .filter(|entry| entry.starts_with(b"160000 "))
        .filter_map(|entry| {
            let tab = entry.iter().position(|byte| *byte == b'\t')?;
            Some(String::from_utf8_lossy(&entry[tab + 1..]).into_owned())
        })
        .collect()
}

/// `argv`'s git with its locating options, then `-C` into each path of `within`.
fn git_within(argv: &[String], within: &[String]) -> Option<Vec<String>> {
    let mut res = git_with_locating_options(argv)?;
    for path in within {
        res.extend(["-C".to_owned(), path.clone()]);
    }
    Some(res)
}

/// `word` in single quotes for `sh`.
fn shell_quoted(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// `argv`'s program and the global options of [`LOCATING_OPTIONS`], when `argv` runs git.
fn git_with_locating_options(argv: &[String]) -> Option<Vec<String>> {
    let program = argv.first()?;
    if Path::new(program).file_name()? != "git" {
        return None;
    }
    let mut res = vec![program.clone()];
    let mut args = argv[1..].iter();
    while let Some(arg) = args.next() {
        if !arg.starts_with('-') {
            // The subcommand.
            break;
        }
        let (name, inline_value) = match arg.split_once('=') {
            Some((name, _)) if name.starts_with("--") => (name, true),
            _ => (arg.as_str(), false),
        };
        let locating = LOCATING_OPTIONS.iter().find(|(option, _)| *option == name);
        let takes_next = !inline_value
            && (locating.is_some_and(|(_, with_value)| *with_value)
                || OPTIONS_WITH_VALUE.contains(&name));
        let value = if takes_next { args.next() } else { None };
        if locating.is_some() {
            res.push(arg.clone());
            res.extend(value.cloned());
        }
    }
    Some(res)
}

/// The keys to set from the scan's output (`git config -z --name-only`: names ended by NUL),
/// each to an empty value, a filter also not required; `Err` when one cannot be switched off.
pub(super) fn found(names: &str) -> Result<Vec<(String, String)>, String> {
    let names: Vec<&str> = names.split('\0').filter(|name| !name.is_empty()).collect();
    if let Some(name) = names.iter().find(|name| CANNOT_SWITCH_OFF.contains(name)) {
        return Err(format!(
            "git's configuration sets {name}, which runs a program that cannot be switched off; \
             not running git"
        ));
    }
    let mut res: BTreeMap<String, String> = BTreeMap::new();
    for name in names {
        res.insert(name.to_owned(), String::new());
        if let Some((driver, _)) = name
            .strip_prefix("filter.")
            .and_then(|rest| rest.rsplit_once('.'))
        {
            res.insert(format!("filter.{driver}.required"), "false".to_owned());
        }
    }
    Ok(res.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|word| (*word).to_owned()).collect()
    }

    #[test]
    fn only_git_is_scanned_with_the_options_that_locate_its_configuration() {
        assert_eq!(scan_argv(&argv(&["python", "git"])), None);
        assert_eq!(scan_argv(&argv(&["gitk"])), None);
        let scan = scan_argv(&argv(&[
            "/usr/bin/git",
            "--no-pager",
            "-C",
            "sub",
            "--namespace",
            "ns",
            "-c",
            "a.b=c",
            "--git-dir=x/.git",
            "--work-tree",
            "x",
            "status",
            "-C",
            "ignored",
        ]))
        .unwrap();
        assert_eq!(
            scan[..9],
            argv(&[
                "/usr/bin/git",
                "-C",
                "sub",
                "-c",
                "a.b=c",
                "--git-dir=x/.git",
                "--work-tree",
                "x",
                "config"
            ])
        );
        assert_eq!(scan.last().map(String::as_str), Some(SCAN_PATTERN));
    }

    #[test]
    fn submodules_are_listed_by_a_git_the_submodule_cannot_choose() {
        let scan = submodules_scan_argv(&argv(&["./git", "-C", "sub", "status"])).unwrap();
        assert_eq!(
            scan[..7],
            argv(&[
                "./git",
                "-C",
                "sub",
                "submodule",
                "foreach",
                "--quiet",
                "--recursive"
            ])
        );
        // Run inside each submodule, `./git` would be the submodule's file.
        let list_keys = &scan[7];
        assert!(list_keys.starts_with("'git' config -z"), "{list_keys}");
        assert!(list_keys.ends_with(" || :"), "{list_keys}");
        let scan = submodules_scan_argv(&argv(&["/opt/it's/git", "status"])).unwrap();
        assert!(
            scan[5].starts_with(r"'/opt/it'\''s/git' config"),
            "{}",
            scan[5]
        );
        assert_eq!(submodules_scan_argv(&argv(&["make"])), None);
    }

    #[test]
    fn gitlinks_are_found_in_the_index_and_scanned_where_they_are() {
        let within = argv(&["lib", "nested dir"]);
        assert_eq!(
            index_argv(&argv(&["git", "-C", "sub", "status"]), &within).unwrap(),
            argv(&[
                "git",
                "-C",
                "sub",
                "-C",
                "lib",
                "-C",
                "nested dir",
                "ls-files",
                "-z",
                "--stage",
                "--",
                ":/"
            ])
        );
        let scan = scan_argv_within(&argv(&["git", "status"]), &within).unwrap();
        assert_eq!(
            scan[..6],
            argv(&["git", "-C", "lib", "-C", "nested dir", "config"])
        );
        let listed = b"100644 8baef1b4abc478178b004d62031cf7fe6db6f903 0\tapp.py\0\
                       160000 2f5b0f0a0a0b8d1b1cfa2b8bd1d3a2c3b4d5e6f7 0\tun listed\0";
        assert_eq!(gitlinks(listed), ["un listed"]);
        assert!(gitlinks(b"").is_empty());
    }

    #[test]
    fn every_found_key_is_blanked_and_filters_made_optional() {
        let found = found("filter.lfs.clean\0filter.lfs.smudge\0alias.st\0").unwrap();
        assert_eq!(
            found,
            [
                ("alias.st".to_owned(), String::new()),
                ("filter.lfs.clean".to_owned(), String::new()),
                ("filter.lfs.required".to_owned(), "false".to_owned()),
                ("filter.lfs.smudge".to_owned(), String::new()),
            ]
        );
        assert!(super::found("gc.recentobjectshook\0").is_err());
    }

    /// The claim the module stands on, checked on the git installed here: the environment
    /// outranks the repository's configuration, and an empty alias runs nothing.
    #[test]
    fn the_environment_outranks_the_repositorys_configuration() {
        let repo = tempfile::tempdir().unwrap();
        let git = |args: &[&str], env: &[(String, OsString)]| {
            let out = std::process::Command::new("git")
                .args(args)
                .current_dir(repo.path())
                .env_remove("GIT_CONFIG_PARAMETERS")
                .envs(env.iter().map(|(name, value)| (name, value)))
                .output()
                .expect("git is installed");
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        git(&["init", "-q", "."], &[]);
        git(&["config", "core.fsmonitor", "./hook.sh"], &[]);
        git(&["config", "alias.st", "!./hook.sh"], &[]);
        let env = env(&[("alias.st".to_owned(), String::new())]);
        assert_eq!(
            git(&["config", "--show-scope", "--get", "core.fsmonitor"], &[]),
            "local\t./hook.sh"
        );
        assert_eq!(
            git(&["config", "--show-scope", "--get", "core.fsmonitor"], &env),
            "command\tfalse"
        );
        assert_eq!(git(&["config", "--get", "alias.st"], &env), "");
        assert_eq!(
            git(&["config", "--get", "core.hooksPath"], &env),
            "/dev/null"
        );
    }

    #[test]
    fn the_environment_counts_its_pairs() {
        let env = env(&[("alias.st".to_owned(), String::new())]);
        let count = FIXED.len() + 1;
        assert_eq!(
            env[0],
            ("GIT_CONFIG_COUNT".to_owned(), count.to_string().into())
        );
        assert_eq!(env.len(), 1 + 2 * count);
        assert_eq!(
            env[env.len() - 2..],
            [
                (format!("GIT_CONFIG_KEY_{}", count - 1), "alias.st".into()),
                (format!("GIT_CONFIG_VALUE_{}", count - 1), "".into()),
            ]
        );
        assert!(env.iter().all(|(name, _)| is_ours(name)));
    }
}
