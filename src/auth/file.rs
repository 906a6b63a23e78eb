//! Credential files: reading `auth.json` / docker `config.json` / legacy `.dockercfg`,
//! finding the entry for a key, and editing a file in place ([`store`], [`remove`],
//! [`remove_all`]).
//!
//! Invariants: an edit keeps every entry and top-level field it does not touch; the file is
//! replaced atomically (temporary file in the same directory, then rename) with mode 0600;
//! directories created on the way are 0700. Output is tab-indented JSON with the `auths`
//! and `credHelpers` maps sorted, as containers/image writes it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use base64::Engine as _;
use serde_json::{Map, Value};

use super::env::AuthPath;
use super::{Auth, Credentials};
use crate::{Error, Result, ResultExt};

/// One `auths` entry, only the fields credentials come from.
#[derive(Debug, Clone, Default)]
pub(crate) struct Entry {
    auth: Option<String>,
    identity_token: Option<String>,
}

/// What a credentials file holds, in file order.
#[derive(Debug, Default)]
pub(crate) struct ParsedFile {
    pub auths: Vec<(String, Entry)>,
    pub cred_helpers: Vec<(String, String)>,
    pub creds_store: Option<String>,
}

/// The outcome of searching one file for a key.
#[derive(Debug)]
pub(crate) enum FileMatch {
    Found(Auth),
    /// `credHelpers[registry]` names this helper.
    Helper(String),
    Nothing,
}

fn corrupt(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::invalid(format!(
        "reading credentials file {:?}: {what}",
        path.display().to_string()
    ))
}

/// Reads the raw JSON of a credentials file: `None` when it does not exist; an empty
/// (whitespace-only) file reads as `{}`.
fn read_value(path: &Path) -> Result<Option<Value>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            return Err(corrupt(path, "not UTF-8 text"))
        }
        Err(e) => return Err(e).context(|| format!("reading credentials file {}", path.display())),
    };
    if text.trim().is_empty() {
        return Ok(Some(Value::Object(Map::new())));
    }
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| corrupt(path, format!("invalid JSON: {e}")))
}

fn opt_str(path: &Path, v: Option<&Value>, field: &str) -> Result<Option<String>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(corrupt(path, format!("{field} is not a string"))),
    }
}

/// An object-or-null field, as a list of its members.
fn members<'a>(
    path: &Path,
    v: Option<&'a Value>,
    field: &str,
) -> Result<Vec<(&'a String, &'a Value)>> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(m)) => Ok(m.iter().collect()),
        Some(_) => Err(corrupt(path, format!("{field} is not a JSON object"))),
    }
}

fn parse_auths(path: &Path, auths: Option<&Value>, field: &str) -> Result<Vec<(String, Entry)>> {
    members(path, auths, field)?
        .into_iter()
        .map(|(key, v)| {
            let what = format!("{field}[{key:?}]");
            let fields = members(path, Some(v), &what)?;
            let get = |name: &str| fields.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
            let entry = Entry {
                auth: opt_str(path, get("auth"), &format!("{what}.auth"))?,
                identity_token: opt_str(
                    path,
                    get("identitytoken"),
                    &format!("{what}.identitytoken"),
                )?,
            };
            Ok((key.clone(), entry))
        })
        .collect()
}

/// Parses a credentials file; a missing file is empty.
pub(crate) fn parse(p: &AuthPath) -> Result<ParsedFile> {
    let path = p.path.as_path();
    let Some(value) = read_value(path)? else {
        return Ok(ParsedFile::default());
    };
    if !value.is_object() {
        return Err(corrupt(path, "top level is not a JSON object"));
    }
    if p.legacy {
        return Ok(ParsedFile {
            auths: parse_auths(path, Some(&value), "top level")?,
            ..Default::default()
        });
    }
    let helpers = members(path, value.get("credHelpers"), "\"credHelpers\"")?
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            _ => Err(corrupt(
                path,
                format!("\"credHelpers\"[{k:?}] is not a string"),
            )),
        })
        .collect::<Result<_>>()?;
    Ok(ParsedFile {
        auths: parse_auths(path, value.get("auths"), "\"auths\"")?,
        cred_helpers: helpers,
        creds_store: opt_str(path, value.get("credsStore"), "\"credsStore\"")?
            .filter(|s| !s.is_empty()),
    })
}

/// `docker.io` and its aliases compare as `index.docker.io`.
pub(crate) fn normalize_registry(registry: &str) -> &str {
    match registry {
        "registry-1.docker.io" | "docker.io" => "index.docker.io",
        other => other,
    }
}

/// The host a file key stands for: `https://host/v1/` → `host`; legacy keys are always
/// cut at the first `/`.
fn normalize_file_key(key: &str, legacy: bool) -> &str {
    let stripped = key.strip_prefix("http://").unwrap_or(key);
    let stripped = stripped.strip_prefix("https://").unwrap_or(stripped);
    let host = if legacy || stripped.len() != key.len() {
        stripped.split('/').next().unwrap_or_default()
    } else {
        stripped
    };
    normalize_registry(host)
}

/// Decodes an entry; `None` for entries without a `user:password` (docker writes `{}`
/// markers when a credential store holds the secret).
fn decode(path: &Path, key: &str, entry: &Entry) -> Result<Option<Auth>> {
    let raw = entry.auth.as_deref().unwrap_or_default();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .map_err(|e| corrupt(path, format!("invalid \"auth\" value for {key:?}: {e}")))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| corrupt(path, format!("\"auth\" value for {key:?} is not UTF-8")))?;
    let Some((user, password)) = text.split_once(':') else {
        if !text.is_empty() {
            tracing::warn!(
                "ignoring the \"auth\" value for {key:?} in {}: no ':' between user and password",
                path.display()
            );
        }
        return Ok(None);
    };
    let password = password.trim_matches('\0');
    let token = entry.identity_token.as_deref().unwrap_or_default();
    Ok(if !token.is_empty() {
        Some(Auth::IdentityToken {
            username: user.to_string(),
            token: token.to_string(),
        })
    } else if user.is_empty() && password.is_empty() {
        None
    } else {
        Some(Auth::Basic(Credentials {
            username: user.to_string(),
            password: password.to_string(),
        }))
    })
}

/// Searches one parsed file for `key` (`host` or `host/ns/…`): a `credHelpers` entry for
/// the host wins; then exact keys from the longest prefix down to the host; then any entry
/// whose normalised host equals the normalised registry (URL-style and docker.io keys).
pub(crate) fn find(
    p: &AuthPath,
    file: &ParsedFile,
    key: &str,
    registry: &str,
) -> Result<FileMatch> {
    if let Some((_, helper)) = file.cred_helpers.iter().find(|(h, _)| h == registry) {
        return Ok(FileMatch::Helper(helper.clone()));
    }
    let exact = |k: &str| file.auths.iter().find(|(name, _)| name == k);
    let candidates: Vec<&str> = if p.legacy {
        vec![registry]
    } else {
        let mut v = vec![key];
        let mut rest = key;
        while let Some((parent, _)) = rest.rsplit_once('/') {
            v.push(parent);
            rest = parent;
        }
        v
    };
    for candidate in candidates {
        if let Some((name, entry)) = exact(candidate) {
            return Ok(decode(&p.path, name, entry)?.map_or(FileMatch::Nothing, FileMatch::Found));
        }
    }
    let wanted = normalize_registry(registry);
    for (name, entry) in &file.auths {
        if normalize_file_key(name, p.legacy) == wanted {
            return Ok(decode(&p.path, name, entry)?.map_or(FileMatch::Nothing, FileMatch::Found));
        }
    }
    Ok(FileMatch::Nothing)
}

/// Reads a file for editing: its top-level object (empty when the file is missing).
fn read_for_edit(path: &Path) -> Result<Map<String, Value>> {
    match read_value(path)? {
        None => Ok(Map::new()),
        Some(Value::Object(m)) => {
            for field in ["auths", "credHelpers"] {
                members(path, m.get(field), &format!("{field:?}"))?;
            }
            Ok(m)
        }
        Some(_) => Err(corrupt(path, "top level is not a JSON object")),
    }
}

/// Sorts the members of the object at `top[field]`, if it is one.
fn sort_members(top: &mut Map<String, Value>, field: &str) {
    if let Some(Value::Object(m)) = top.get_mut(field) {
        let mut entries: Vec<(String, Value)> = std::mem::take(m).into_iter().collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        m.extend(entries);
    }
}

fn serialize(top: &Map<String, Value>) -> Vec<u8> {
    use serde::Serialize as _;
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    top.serialize(&mut ser)
        .expect("a JSON map always serialises");
    out
}

/// Writes `data` to `path` atomically with mode 0600, creating missing parents as 0700.
fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let ctx = || format!("writing credentials file {}", path.display());
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .context(ctx)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "auth.json".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut attempt = 0u32;
    let (tmp, mut file) = loop {
        let tmp = dir.join(format!(
            ".{name}.{}.{nanos}.{attempt}.tmp",
            std::process::id()
        ));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
        {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1
            }
            Err(e) => return Err(e).context(ctx),
        }
    };
    let result = file
        .write_all(data)
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e).context(ctx);
    }
    Ok(())
}

/// Records `creds` under `key` in the credentials file at `path` (what `login` does),
/// keeping every other entry and field. Fails if the file routes `key` to a credential
/// helper (`credHelpers`), which this does not write to.
pub fn store(path: &Path, key: &str, creds: &Credentials) -> Result<()> {
    let mut top = read_for_edit(path)?;
    if let Some(Value::Object(helpers)) = top.get("credHelpers") {
        if let Some(Value::String(helper)) = helpers.get(key) {
            return Err(Error::Unsupported(format!(
                "credentials for {key} are kept by credential helper docker-credential-{helper} (\"credHelpers\" in {}); storing them there is not supported",
                path.display()
            )));
        }
    }
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", creds.username, creds.password));
    let mut entry = Map::new();
    entry.insert("auth".into(), Value::String(encoded));
    let auths = top
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if auths.is_null() {
        *auths = Value::Object(Map::new());
    }
    if let Value::Object(m) = auths {
        m.insert(key.to_string(), Value::Object(entry));
    }
    sort_members(&mut top, "auths");
    sort_members(&mut top, "credHelpers");
    write_atomic(path, &serialize(&top))
}

/// Removes the entry stored under exactly `key` (what `logout` does). `Ok(false)` when
/// there was none; the file is then left untouched (and not created).
pub fn remove(path: &Path, key: &str) -> Result<bool> {
    if !path.exists() {
        return Ok(false);
    }
    let mut top = read_for_edit(path)?;
    let removed = match top.get_mut("auths") {
        Some(Value::Object(m)) => m.shift_remove(key).is_some(),
        _ => false,
    };
    if removed {
        sort_members(&mut top, "auths");
        sort_members(&mut top, "credHelpers");
        write_atomic(path, &serialize(&top))?;
    }
    Ok(removed)
}

/// Empties `auths` (what `logout --all` does). Other fields, `credHelpers` included, are
/// kept: they are configuration, not stored secrets. A missing file stays missing.
pub fn remove_all(path: &Path) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let mut top = read_for_edit(path)?;
    top.insert("auths".into(), Value::Object(Map::new()));
    sort_members(&mut top, "credHelpers");
    write_atomic(path, &serialize(&top))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_keys_normalise_to_hosts() {
        assert_eq!(
            normalize_file_key("https://index.docker.io/v1/", false),
            "index.docker.io"
        );
        assert_eq!(
            normalize_file_key("http://reg.example:5000/v2/", false),
            "reg.example:5000"
        );
        assert_eq!(normalize_file_key("docker.io", false), "index.docker.io");
        assert_eq!(
            normalize_file_key("registry-1.docker.io", false),
            "index.docker.io"
        );
        // Without a scheme a non-legacy key is taken as written.
        assert_eq!(
            normalize_file_key("reg.example/ns", false),
            "reg.example/ns"
        );
        assert_eq!(normalize_file_key("reg.example/v1/", true), "reg.example");
    }

    #[test]
    fn decode_handles_markers_nuls_and_tokens() {
        let p = Path::new("/f.json");
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let entry = |auth: &str, tok: Option<&str>| Entry {
            auth: Some(b64(auth)),
            identity_token: tok.map(str::to_string),
        };
        let basic = |u: &str, pw: &str| {
            Some(Auth::Basic(Credentials {
                username: u.into(),
                password: pw.into(),
            }))
        };
        assert_eq!(
            decode(p, "k", &entry("u:p:q", None)).unwrap(),
            basic("u", "p:q")
        );
        assert_eq!(
            decode(p, "k", &entry("u:p\0\0", None)).unwrap(),
            basic("u", "p")
        );
        assert_eq!(decode(p, "k", &entry("u:", None)).unwrap(), basic("u", ""));
        assert_eq!(decode(p, "k", &entry(":", None)).unwrap(), None);
        assert_eq!(decode(p, "k", &entry("nocolon", None)).unwrap(), None);
        assert_eq!(decode(p, "k", &Entry::default()).unwrap(), None);
        // A token without a user:password pair is ignored, as containers/image does.
        assert_eq!(decode(p, "k", &entry("", Some("t"))).unwrap(), None);
        assert_eq!(
            decode(p, "k", &entry("iu:", Some("t"))).unwrap(),
            Some(Auth::IdentityToken {
                username: "iu".into(),
                token: "t".into()
            })
        );
        let bad = Entry {
            auth: Some("!!!".into()),
            identity_token: None,
        };
        let err = decode(p, "k", &bad).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("/f.json"), "{err}");
    }
}
