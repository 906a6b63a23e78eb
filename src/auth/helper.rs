//! Docker credential helpers: running `docker-credential-NAME get` with the server on
//! stdin and reading `{"Username", "Secret"}` back.
//!
//! The helper is looked up in [`AuthEnv::path`] only (absolute directories; never the
//! current directory). A helper answering "credentials not found in native keychain" means
//! no credentials; any other failure is an error naming the helper. Helper output is never
//! logged in full: it may hold secrets.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::env::AuthEnv;
use super::{Auth, Credentials};
use crate::{Error, Result};

/// What helpers print when they hold nothing for the server.
const NOT_FOUND: &str = "credentials not found in native keychain";

/// The username a helper returns for an identity (OAuth2 refresh) token.
const TOKEN_USER: &str = "<token>";

/// Most bytes of helper output quoted in an error.
const QUOTE_MAX: usize = 200;

/// The executable for helper `name`, if it is on the search path.
pub(crate) fn find_program(env: &AuthEnv, name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let program = format!("docker-credential-{name}");
    let path = env.path.as_ref()?;
    std::env::split_paths(path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(&program))
        .find(|p| {
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

fn quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    match text.char_indices().nth(QUOTE_MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Asks helper `name` for the credentials of `server`. `Ok(None)` when it has none.
pub(crate) fn get(env: &AuthEnv, name: &str, server: &str) -> Result<Option<Auth>> {
    let program = format!("docker-credential-{name}");
    if name.is_empty() || name.contains('/') {
        return Err(Error::invalid(format!(
            "invalid credential helper name {name:?}"
        )));
    }
    let Some(exe) = find_program(env, name) else {
        return Err(Error::other(format!(
            "getting credentials for {server}: credential helper {program} not found in $PATH"
        )));
    };
    let fail = |why: String| {
        Error::other(format!(
            "getting credentials for {server} from {program}: {why}"
        ))
    };
    let mut cmd = Command::new(&exe);
    crate::sysroots::restore_for_child(&mut cmd);
    let mut child = cmd
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run {}: {e}", exe.display())))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper may exit without reading its input; its answer is what counts.
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("waiting for it: {e}")))?;
    if !out.status.success() {
        let said = quote(&out.stdout);
        if said == NOT_FOUND {
            return Ok(None);
        }
        let said = if said.is_empty() {
            quote(&out.stderr)
        } else {
            said
        };
        return Err(fail(format!("{}: {said}", out.status)));
    }

    #[derive(serde::Deserialize)]
    struct Reply {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    let reply: Reply =
        serde_json::from_slice(&out.stdout).map_err(|e| fail(format!("unreadable answer: {e}")))?;
    Ok(match (reply.username.as_str(), reply.secret) {
        (_, secret) if secret.is_empty() && reply.username.is_empty() => None,
        (TOKEN_USER, token) => Some(Auth::IdentityToken {
            username: String::new(),
            token,
        }),
        (user, password) => Some(Auth::Basic(Credentials {
            username: user.to_string(),
            password,
        })),
    })
}
