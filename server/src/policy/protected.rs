//! Protected paths: files no assistant should change without the user's own say-so, as data.
//!
//! A write to a protected path is refused before any prompt, in every front end, with a
//! `PermissionError` that names the rule (`write_file: .git/config is protected (version
//! control internals)`). The user's own settings (never a workspace's) can turn a rule into
//! ask-every-time; such an approval is never remembered for the session.
//!
//! Paths are judged as the workspace resolved them (normalised, symlinks followed), so no
//! spelling (`src/./../.git/config`, a symlink, `README.md/../.git`) reaches a protected file
//! unjudged. They are judged whole, the workspace's root and the folders above it included
//! (the canonical path, as an answer's edit to a file outside every folder is): a workspace
//! opened at a bare repository, a `.github`, a `.vscode` or a Python environment, or inside
//! one, has every path in it protected, so a write there is refused, and commands get the
//! root read-only (`jail::protected_in`). Names compare without regard to ASCII case and without trailing dots and
//! spaces, so `.GIT/config` and `.git./config` are `.git/config` on the file systems (macOS,
//! Windows) where they are; on Linux that refuses a few odd names too, which costs nothing.

use super::request::Target;

/// One protected class of paths.
#[derive(Debug, PartialEq, Eq)]
pub struct ProtectedRule {
    /// Its name in settings (`protectedPaths.<id>`) and in refusals and transcripts.
    pub id: &'static str,
    /// Why it is protected, shown in the refusal after "is protected".
    pub reason: &'static str,
    pub patterns: &'static [Pattern],
}

/// How a rule recognises a path. Names are written in lower case.
#[derive(Debug, PartialEq, Eq)]
pub enum Pattern {
    /// A directory or file of this name at any depth, and everything under it (`.git`).
    Component(&'static str),
    /// These components in a row at any depth, and everything under them
    /// (`.github/workflows`).
    Components(&'static [&'static str]),
    /// A file whose name ends so (`.code-workspace`).
    Suffix(&'static str),
    /// An existing file with an execute bit.
    Executable,
    /// An existing file with other hard links: writing it changes files the prompt cannot name.
    HardLinked,
    /// A directory that holds one of [`VIRTUAL_ENV_MARKERS`] (a Python environment, whatever
    /// its name), and everything under it: its `bin/activate`, `bin/python` and
    /// `site-packages/*.pth` run whenever the user's editor or shell uses it. A write that
    /// would make a directory on its way one (`env/conda-meta/history`) is judged as inside
    /// it; the workspace's root and the folders above it count too (a venv opened as the
    /// folder).
    VirtualEnv,
    /// A directory that looks like a git directory whatever its name (a bare repository, a
    /// linked worktree's), and everything under it: its `config` and `hooks/` run programs at
    /// the user's next git command. A write that would make a directory on its way one
    /// (`src/HEAD` after `src/objects/` and `src/refs/`) is judged as inside it; the
    /// workspace's root and the folders above it count too (a bare repository opened as the
    /// folder), but for a bare repository above a root that is its worktree (`repo.git/main`).
    GitDir,
    /// The user's own configuration, known by what it is wherever it lies (a workspace may
    /// hold it): Punie's policy file, which says what runs without asking.
    UserConfig,
}

/// What makes a directory a Python environment: `pyvenv.cfg` (venv, virtualenv, uv) or
/// `conda-meta` (conda).
pub const VIRTUAL_ENV_MARKERS: &[&str] = &["pyvenv.cfg", "conda-meta"];

use Pattern::{Component, Components, HardLinked, Suffix};

/// Every protected class, in the order they are checked (the first match names the refusal).
pub static PROTECTED: &[ProtectedRule] = &[
    ProtectedRule {
        id: "vcs",
        reason: "version control internals",
        patterns: &[
            Component(".git"),
            Component(".hg"),
            Component(".svn"),
            Component(".bzr"),
            Component("_darcs"),
            Component(".jj"),
            Component(".gitconfig"),
            Pattern::GitDir,
        ],
    },
    ProtectedRule {
        id: "editor",
        reason: "editor and agent configuration",
        patterns: &[
            Component(".vscode"),
            Component(".idea"),
            Component(".zed"),
            Component(".punie"),
            Component(".fleet"),
            Component(".devcontainer"),
            Component(".cursor"),
            Component(".claude"),
            Components(&[".config", "punie"]),
            Components(&[".config", "zed"]),
            Components(&[".config", "nvim"]),
            Suffix(".code-workspace"),
            Component(".exrc"),
            Component(".nvimrc"),
            Component(".nvim.lua"),
            // LazyVim runs a project's `.lazy.lua` as a plugin spec when Neovim opens there.
            Component(".lazy.lua"),
        ],
    },
    ProtectedRule {
        id: "git_hooks",
        reason: "git hooks",
        patterns: &[
            Component(".husky"),
            Component(".githooks"),
            Component("lefthook.yml"),
            Component("lefthook.yaml"),
            Component(".lefthook.yml"),
            Component(".lefthook.yaml"),
        ],
    },
    ProtectedRule {
        id: "pre_commit",
        reason: "pre-commit configuration",
        patterns: &[
            Component(".pre-commit-config.yaml"),
            Component(".pre-commit-config.yml"),
        ],
    },
    ProtectedRule {
        id: "ci",
        reason: "CI workflow",
        patterns: &[
            Components(&[".github", "workflows"]),
            Components(&[".github", "actions"]),
            Component(".gitlab-ci.yml"),
            Component(".gitlab"),
            Component(".circleci"),
            Component(".buildkite"),
            Component(".woodpecker"),
            Component(".woodpecker.yml"),
            Component(".travis.yml"),
            Component(".drone.yml"),
            Component(".cirrus.yml"),
            Component("appveyor.yml"),
            Component(".appveyor.yml"),
            Component("azure-pipelines.yml"),
            Component("bitbucket-pipelines.yml"),
            Component("jenkinsfile"),
        ],
    },
    ProtectedRule {
        id: "autorun",
        reason: "runs by itself",
        patterns: &[
            // direnv and mise (formerly rtx) run these on `cd`: their `[env]` `_.source`, hooks
            // and tool plugins run programs.
            Component(".envrc"),
            Component("mise.toml"),
            Component(".mise.toml"),
            Component("mise.local.toml"),
            Component(".mise.local.toml"),
            Component(".mise"),
            Components(&["mise", "config.toml"]),
            Components(&[".config", "mise"]),
            Components(&[".config", "mise.toml"]),
            Component(".rtx.toml"),
            Component(".rtx.local.toml"),
            // Python runs these at every start when they sit in site-packages.
            Suffix(".pth"),
            Component("sitecustomize.py"),
            Component("usercustomize.py"),
            Component(".venv"),
            Pattern::VirtualEnv,
            Component("pyvenv.cfg"),
        ],
    },
    ProtectedRule {
        id: "build_config",
        reason: "build tool configuration that runs programs",
        patterns: &[
            // Cargo runs `build.rustc-wrapper` and `target.*.runner` on every build.
            Components(&[".cargo", "config.toml"]),
            Components(&[".cargo", "config"]),
            // npm's `node-options = --require …` and `script-shell`, Yarn's `yarnPath`.
            Component(".npmrc"),
            Component(".yarnrc"),
            Component(".yarnrc.yml"),
            // Debuggers' start-up files: pdb runs `.pdbrc` from the current directory, pdb++
            // `.pdbrc.py`; gdb and lldb run `.gdbinit` and `.lldbinit` there where the user's
            // settings allow it (`auto-load safe-path`, `target.load-cwd-lldbinit`); IPython
            // before 8 loads `ipython_config.py` (its `exec_lines`) from there.
            Component(".pdbrc"),
            Component(".pdbrc.py"),
            Component(".gdbinit"),
            Component(".lldbinit"),
            Component("ipython_config.py"),
            // Bazel's `--run_under`; Maven's and Gradle's wrappers download and run a
            // distribution from the URL they name; sbt's and the JVM's options load agents.
            Component(".bazelrc"),
            Component(".mvn"),
            Components(&["gradle", "wrapper"]),
            Component(".jvmopts"),
            Component(".sbtopts"),
        ],
    },
    ProtectedRule {
        id: "shell_startup",
        reason: "shell start-up file",
        patterns: &[
            Component(".profile"),
            Component(".bashrc"),
            Component(".bash_profile"),
            Component(".bash_login"),
            Component(".bash_logout"),
            Component(".zshrc"),
            Component(".zshenv"),
            Component(".zprofile"),
            Component(".zlogin"),
            Component(".zlogout"),
            Component(".cshrc"),
            Component(".tcshrc"),
            Component(".kshrc"),
            Component(".inputrc"),
            Components(&[".config", "fish"]),
            Component(".ssh"),
        ],
    },
    ProtectedRule {
        id: "user_config",
        reason: "the user's own configuration",
        patterns: &[Pattern::UserConfig],
    },
    ProtectedRule {
        id: "executable",
        reason: "existing executable",
        patterns: &[Pattern::Executable],
    },
    ProtectedRule {
        id: "hard_link",
        reason: "it has other hard links",
        patterns: &[HardLinked],
    },
];

/// The rule called `id`.
pub fn rule_by_id(id: &str) -> Option<&'static ProtectedRule> {
    PROTECTED.iter().find(|rule| rule.id == id)
}

/// A name as the comparison sees it: lower case, without the trailing dots and spaces that
/// Windows drops.
fn folded(name: &str) -> String {
    name.trim_end_matches(['.', ' ']).to_ascii_lowercase()
}

impl Pattern {
    fn matches(&self, components: &[String], target: &Target) -> bool {
        match self {
            Component(name) => components.iter().any(|component| component == name),
            Components(names) => components
                .windows(names.len())
                .any(|window| window.iter().zip(names.iter()).all(|(a, b)| a == b)),
            Suffix(suffix) => components.last().is_some_and(|name| name.ends_with(suffix)),
            Pattern::Executable => target.exists && !target.is_dir && target.executable,
            HardLinked => target.exists && !target.is_dir && target.hard_links > 1,
            Pattern::VirtualEnv => target.in_virtual_env,
            Pattern::GitDir => target.in_git_dir,
            Pattern::UserConfig => target.user_config,
        }
    }
}

/// The first protected rule that `target` falls under, its workspace's root and the folders
/// above it included: a write in a `.github` or a bare repository opened as the workspace is
/// a write in CI workflows or a git directory all the same.
pub fn protected_rule(target: &Target) -> Option<&'static ProtectedRule> {
    let components: Vec<String> = target
        .root
        .split('/')
        .chain(target.rel.split('/'))
        .filter(|name| !name.is_empty() && *name != ".")
        .map(folded)
        .collect();
    PROTECTED.iter().find(|rule| {
        rule.patterns
            .iter()
            .any(|pattern| pattern.matches(&components, target))
    })
}
