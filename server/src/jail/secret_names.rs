//! Files of a workspace whose name marks a secret: `.env`, a private key, a `.netrc`, or
//! what [`SECRETS`] names under the home (`.ssh/`, `.aws/credentials`, `.kube/config`) found
//! at any depth of the workspace. Commands may read them (the user approved the command);
//! the read tools ask the user every time first (`policy::decide`), the tools that read on
//! their own (navigation, the typed tools) never read them, and the jail of the language server
//! behind navigation hides them from it (`workspace_secrets.rs`).

use std::sync::LazyLock;

use super::SECRETS;

/// Names that look like a secret but are published on purpose: templates of an `.env`.
/// Public keys (`*.pub`) are the other harmless variant.
const HARMLESS_NAMES: &[&str] = &[".env.example", ".env.sample", ".env.template"];

/// File names that mark a secret wherever they are, besides the home entries of [`SECRETS`].
const SECRET_NAMES: &[&str] = &[
    ".env",
    ".envrc",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ecdsa_sk",
    "id_ed25519",
    "id_ed25519_sk",
    "_netrc",
    ".pgpass",
    ".htpasswd",
];

/// Name prefixes that mark a secret: `.env.local`, `.env.production`.
const SECRET_PREFIXES: &[&str] = &[".env."];

/// Extensions of private keys and of key stores.
const SECRET_EXTENSIONS: &[&str] = &["pem", "key", "p12", "pfx", "jks", "keystore", "ppk"];

/// What marks the workspace path `rel` (`/`-separated, relative to the workspace root) as a
/// secret: a name of [`SECRET_NAMES`], a prefix, an extension, or a [`SECRETS`] home entry
/// without its `~/` (`.ssh`, `.aws`, `.docker/config.json`) as consecutive components
/// anywhere in it. Compared without case, as a case-insensitive file system opens them.
/// `None` for everything else and for the harmless variants.
pub fn secret_name(rel: &str) -> Option<&'static str> {
    let parts: Vec<String> = rel.split('/').map(str::to_ascii_lowercase).collect();
    let name = parts.last()?;
    if name.ends_with(".pub") || HARMLESS_NAMES.contains(&name.as_str()) {
        return None;
    }
    let found = SECRET_NAMES.iter().find(|secret| *secret == name);
    let found = found.or_else(|| SECRET_PREFIXES.iter().find(|p| name.starts_with(*p)));
    let extension = name
        .rsplit_once('.')
        .filter(|(stem, _)| !stem.is_empty())
        .map(|(_, extension)| extension);
    let found = found.or_else(|| SECRET_EXTENSIONS.iter().find(|e| Some(**e) == extension));
    if let Some(found) = found {
        return Some(found);
    }
    HOME_ENTRIES
        .iter()
        .find(|(_, entry)| parts.windows(entry.len()).any(|window| window == entry))
        .map(|(entry, _)| *entry)
}

/// The [`SECRETS`] home entries without their `~/`, with their components in lowercase: split
/// once, since a walk of the workspace asks [`secret_name`] about every entry it reads.
static HOME_ENTRIES: LazyLock<Vec<(&str, Vec<String>)>> = LazyLock::new(|| {
    SECRETS
        .iter()
        .filter_map(|entry| entry.strip_prefix("~/"))
        .map(|entry| {
            (
                entry,
                entry.split('/').map(str::to_ascii_lowercase).collect(),
            )
        })
        .collect()
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_known_by_name_at_any_depth() {
        for (rel, why) in [
            (".env", ".env"),
            ("app/.env", ".env"),
            (".env.local", ".env."),
            (".ENV.Production", ".env."),
            (".envrc", ".envrc"),
            ("id_ed25519", "id_ed25519"),
            ("deploy/id_rsa", "id_rsa"),
            ("certs/server.pem", "pem"),
            ("tls/site.key", "key"),
            (".netrc", ".netrc"),
            (".npmrc", ".npmrc"),
            ("web/.npmrc", ".npmrc"),
            (".pypirc", ".pypirc"),
            (".aws/credentials", ".aws"),
            ("infra/.kube/config", ".kube"),
            (".ssh/known_hosts", ".ssh"),
            (".docker/config.json", ".docker/config.json"),
            (".config/gh/hosts.yml", ".config/gh"),
        ] {
            assert_eq!(secret_name(rel), Some(why), "{rel}");
        }
    }

    #[test]
    fn harmless_variants_and_ordinary_files_are_not_secrets() {
        for rel in [
            ".env.example",
            ".env.sample",
            ".env.template",
            "id_ed25519.pub",
            ".ssh/id_rsa.pub",
            "src/app.py",
            "README.md",
            ".",
            "env.py",
            ".environment",
            ".pem",
            ".docker/daemon.json",
            "config.json",
            ".env/lib/site.py",
        ] {
            assert_eq!(secret_name(rel), None, "{rel}");
        }
    }
}
