//! Registry credentials as skopeo keeps them: `--creds` parsing, the search order of
//! `auth.json` / docker `config.json` / `.dockercfg`, longest-prefix key matching, docker
//! credential helpers, and the file edits behind `login` / `logout`.
//!
//! All functions are synchronous file and process work; async callers run them with
//! `spawn_blocking`. The environment is passed in as an [`AuthEnv`] so nothing here reads
//! the real `$HOME` unless asked to ([`AuthEnv::from_process`]).
//!
//! Compatibility target: skopeo 1.9.3 (containers/image 5.23). Where scry differs on
//! purpose: edits keep unknown fields (skopeo drops them), `logout --all` keeps
//! `credHelpers`, an empty file reads as `{}`, and a `credsStore` default helper is used
//! when a file holds no entry for the registry (docker's behaviour; skopeo ignores it).

mod env;
mod file;
mod helper;
mod key;
pub mod messages;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

pub use env::{AuthEnv, AuthPath};
pub use file::{remove, remove_all, store};
pub use key::validate_key;

use crate::{Error, Result};

/// A user name and password. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &format_args!("<redacted>"))
            .finish()
    }
}

impl Credentials {
    /// Parses `USER[:PASSWORD]` as skopeo's `--creds`: the password is everything after the
    /// first `:` (it may contain more) and is empty when there is no `:`; the user must not
    /// be empty.
    pub fn parse_creds(s: &str) -> Result<Credentials> {
        if s.is_empty() {
            return Err(Error::invalid("credentials can't be empty"));
        }
        let (username, password) = s.split_once(':').unwrap_or((s, ""));
        if username.is_empty() {
            return Err(Error::invalid("username can't be empty"));
        }
        Ok(Credentials {
            username: username.to_string(),
            password: password.to_string(),
        })
    }
}

/// How to authenticate to a registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    Anonymous,
    Basic(Credentials),
    /// A docker `identitytoken`: an OAuth2 refresh token, exchanged at the token endpoint
    /// (`grant_type=refresh_token`) instead of sending a password.
    IdentityToken {
        username: String,
        token: String,
    },
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Anonymous => f.write_str("Anonymous"),
            Auth::Basic(c) => f.debug_tuple("Basic").field(c).finish(),
            Auth::IdentityToken { username, .. } => f
                .debug_struct("IdentityToken")
                .field("username", username)
                .field("token", &format_args!("<redacted>"))
                .finish(),
        }
    }
}

impl Auth {
    /// The user name, if any (empty names count as none).
    pub fn username(&self) -> Option<&str> {
        match self {
            Auth::Anonymous => None,
            Auth::Basic(c) => Some(c.username.as_str()),
            Auth::IdentityToken { username, .. } => Some(username.as_str()),
        }
        .filter(|u| !u.is_empty())
    }
}

/// Credentials for `key` (`host` or `host/ns/repo`) as image commands (copy, inspect, …)
/// find them; `authfile` is `--authfile`, defaulting to `$REGISTRY_AUTH_FILE`. The files of
/// [`AuthEnv::search_paths`] are read in order and the first that has credentials wins.
/// In each file: a `credHelpers` entry for the host runs that helper; otherwise the longest
/// matching key among `host/ns/repo`, `host/ns`, `host`; otherwise an entry whose key is a
/// URL or alias of the host (`https://index.docker.io/v1/` for `docker.io`); otherwise the
/// file's `credsStore` helper. A corrupt file is an `InvalidInput` error naming it.
/// Parses the credentials file at `path` as an auth.json and as a legacy
/// `~/.dockercfg`, keeping nothing: whether it is well formed (fuzzing, tests).
#[doc(hidden)]
pub fn check_file(path: &Path) -> Result<()> {
    for legacy in [false, true] {
        file::parse(&AuthPath {
            path: path.to_path_buf(),
            legacy,
        })?;
    }
    Ok(())
}

pub fn lookup(env: &AuthEnv, authfile: Option<&Path>, key: &str) -> Result<Auth> {
    lookup_in(env, env.image_authfile(authfile).as_deref(), key)
}

/// The registries that credentials are stored for in the files [`lookup`] reads
/// (`auths` keys and `credHelpers` entries, as `host[:port]`), sorted and each once.
/// Files that cannot be read are skipped: this is for listings, not for credentials.
pub fn registries_with_credentials(env: &AuthEnv, authfile: Option<&Path>) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    for path in env.search_paths(env.image_authfile(authfile).as_deref()) {
        let Ok(parsed) = file::parse(&path) else {
            continue;
        };
        let keys = parsed.auths.iter().map(|(k, _)| k.as_str());
        for key in keys.chain(parsed.cred_helpers.iter().map(|(k, _)| k.as_str())) {
            let key = key::strip_url(key);
            let host = match key::registry_of(&key) {
                "index.docker.io" | "registry-1.docker.io" => "docker.io",
                h => h,
            };
            if !host.is_empty() {
                out.insert(host.to_string());
            }
        }
    }
    out.into_iter().collect()
}

/// [`lookup`] with the auth file `login` and `logout` use: `--authfile`, else
/// `$REGISTRY_AUTH_FILE`, else `$DOCKER_CONFIG/config.json`.
pub fn lookup_for_login(env: &AuthEnv, authfile: Option<&Path>, key: &str) -> Result<Auth> {
    lookup_in(env, env.login_authfile(authfile).as_deref(), key)
}

/// The user name `login --get-login` prints for `key`; `None` when not logged in (the CLI
/// then fails with [`messages::not_logged_in`]).
pub fn get_login(env: &AuthEnv, authfile: Option<&Path>, key: &str) -> Result<Option<String>> {
    let auth = lookup_for_login(env, authfile, key)?;
    Ok(auth.username().map(str::to_string))
}

/// Where `login` writes and `logout` edits: `--authfile`, else `$REGISTRY_AUTH_FILE`, else
/// `$DOCKER_CONFIG/config.json`, else `$XDG_RUNTIME_DIR/containers/auth.json`, else
/// `/run/containers/$UID/auth.json`.
pub fn default_write_path(env: &AuthEnv, authfile: Option<&Path>) -> PathBuf {
    env.login_authfile(authfile)
        .unwrap_or_else(|| env.runtime_auth_file())
}

/// [`default_write_path`], failing as skopeo does when it would fall under a
/// `$XDG_RUNTIME_DIR` that does not exist (rather than creating that directory).
pub fn write_path(env: &AuthEnv, authfile: Option<&Path>) -> Result<PathBuf> {
    if env.login_authfile(authfile).is_none() {
        if let Some(dir) = env.missing_runtime_dir() {
            return Err(Error::invalid(env::missing_runtime_dir_message(dir)));
        }
    }
    Ok(default_write_path(env, authfile))
}

fn lookup_in(env: &AuthEnv, authfile: Option<&Path>, key: &str) -> Result<Auth> {
    key::check_key(key)?;
    let registry = key::registry_of(key);
    for path in env.search_paths(authfile) {
        let parsed = file::parse(&path)?;
        let found = match file::find(&path, &parsed, key, registry)? {
            file::FileMatch::Found(auth) => Some(auth),
            file::FileMatch::Helper(name) => {
                tracing::debug!(
                    "looking up {registry} with credential helper {name} (credHelpers in {})",
                    path.path.display()
                );
                helper::get(env, &name, registry)?
            }
            file::FileMatch::Nothing => match &parsed.creds_store {
                Some(store) => creds_store_get(env, store, registry, &path),
                None => None,
            },
        };
        if let Some(auth) = found {
            tracing::debug!("found credentials for {key} in {}", path.path.display());
            return Ok(auth);
        }
    }
    tracing::debug!("no credentials for {key}");
    Ok(Auth::Anonymous)
}

/// Asks a file's `credsStore` helper, keyed as docker keys it (the v1 index URL for Docker
/// Hub). Failures are warnings: the store is a docker default skopeo never consults, so it
/// must not make a lookup fail that skopeo would answer.
fn creds_store_get(env: &AuthEnv, store: &str, registry: &str, path: &AuthPath) -> Option<Auth> {
    let server = match file::normalize_registry(registry) {
        "index.docker.io" => "https://index.docker.io/v1/",
        _ => registry,
    };
    helper::find_program(env, store)?;
    match helper::get(env, store, server) {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(
                "ignoring credsStore {store:?} of {}: {e}",
                path.path.display()
            );
            None
        }
    }
}
