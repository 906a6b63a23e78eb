//! `scry login` and `scry logout`: check credentials against the registry, then keep them
//! in the auth file (0600).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;

use super::options::{parse_go_bool, GlobalOpts};
use super::output::write_stdout;
use crate::auth::{self, AuthEnv, Credentials};
use crate::error::{Error, Result};
use crate::transport::docker::{connect_with_key, CredentialChoice, DockerOptions};

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// path of the authentication file. Use REGISTRY_AUTH_FILE environment variable to override
    #[arg(long, value_name = "PATH")]
    authfile: Option<PathBuf>,
    /// use certificates at the specified path to access the registry
    #[arg(long, value_name = "PATH")]
    cert_dir: Option<PathBuf>,
    /// Return the current login user for the registry
    #[arg(long)]
    get_login: bool,
    /// Password for registry
    #[arg(short = 'p', long, value_name = "PASSWORD")]
    password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    password_stdin: bool,
    /// require HTTPS and verify certificates when accessing the registry
    #[arg(long = "tls-verify", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_go_bool, value_name = "BOOL")]
    tls_verify: Option<bool>,
    /// Username for registry
    #[arg(short = 'u', long, value_name = "USERNAME")]
    username: Option<String>,
    /// Write more detailed information to stdout
    #[arg(short = 'v', long)]
    verbose: bool,
    /// The registry (HOST[:PORT], optionally with /NAMESPACE/REPO)
    #[arg(value_name = "REGISTRY")]
    registry: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// Remove the cached credentials for all registries in the auth file
    #[arg(short = 'a', long)]
    all: bool,
    /// path of the authentication file. Use REGISTRY_AUTH_FILE environment variable to override
    #[arg(long, value_name = "PATH")]
    authfile: Option<PathBuf>,
    /// require HTTPS and verify certificates when accessing the registry
    #[arg(long = "tls-verify", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_go_bool, value_name = "BOOL")]
    tls_verify: Option<bool>,
    /// The registry (HOST[:PORT], optionally with /NAMESPACE/REPO)
    #[arg(value_name = "REGISTRY")]
    registry: Vec<String>,
}

pub async fn login(global: &GlobalOpts, a: LoginArgs) -> Result<()> {
    use auth::messages as m;
    let env = AuthEnv::from_process();
    let registry = match a.registry.as_slice() {
        [] => return Err(Error::invalid(m::LOGIN_NO_REGISTRY)),
        [one] => one,
        _ => return Err(Error::invalid(m::LOGIN_TOO_MANY)),
    };
    let key = auth::validate_key(registry)?;
    if a.get_login {
        return match auth::get_login(&env, a.authfile.as_deref(), &key)? {
            Some(user) => write_stdout(format!("{user}\n").as_bytes()),
            None => Err(Error::other(m::not_logged_in(&key))),
        };
    }
    if a.password.is_some() && a.password_stdin {
        return Err(Error::invalid(
            "--password and --password-stdin cannot be used together",
        ));
    }
    let host = key.split('/').next().unwrap_or(&key).to_string();
    let stored = auth::lookup_for_login(&env, a.authfile.as_deref(), &key)?;
    if let auth::Auth::IdentityToken { .. } = stored {
        return Err(Error::invalid(m::IDENTITY_TOKEN_PRESENT));
    }
    // No new credentials: check the stored ones first, as skopeo does.
    let mut stored_user = None;
    if let auth::Auth::Basic(c) = &stored {
        if a.username.is_none() && a.password.is_none() && !a.password_stdin {
            if !c.username.is_empty() && !c.password.is_empty() {
                write_stdout(format!("{}\n", m::authenticating_with_existing(&key)).as_bytes())?;
                match check(global, &a, &host, &key, c.clone()).await {
                    Ok(()) => {
                        return write_stdout(
                            format!("{}\n", m::already_logged_in(&host)).as_bytes(),
                        )
                    }
                    Err(e) => {
                        tracing::debug!("stored credentials refused: {e}");
                        write_stdout(format!("{}\n", m::EXISTING_INVALID).as_bytes())?;
                    }
                }
            }
            stored_user = Some(c.username.clone()).filter(|u| !u.is_empty());
        }
    }
    let username = match &a.username {
        Some(u) => u.clone(),
        None if a.password_stdin => {
            return Err(Error::invalid("--password-stdin requires --username"));
        }
        None => {
            let label = match &stored_user {
                Some(u) => format!("Username ({u}): "),
                None => "Username: ".to_string(),
            };
            let typed = prompt(&label, false)?;
            match (typed.is_empty(), stored_user) {
                (true, Some(u)) => u,
                _ => typed,
            }
        }
    };
    if username.is_empty() {
        return Err(Error::invalid("a username is required"));
    }
    let password = match (&a.password, a.password_stdin) {
        (Some(p), _) => p.clone(),
        (None, true) => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| Error::Io(e).context("reading the password from standard input"))?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
        (None, false) => prompt("Password: ", true)?,
    };
    if password.is_empty() {
        return Err(Error::invalid("a password is required"));
    }
    let path = auth::write_path(&env, a.authfile.as_deref())?;
    let creds = Credentials { username, password };
    check(global, &a, &host, &key, creds.clone()).await?;
    auth::store(&path, &key, &creds)?;
    if a.verbose {
        write_stdout(format!("Used:  {}\n", path.display()).as_bytes())?;
    }
    write_stdout(format!("{}\n", m::LOGIN_SUCCEEDED).as_bytes())
}

/// Checks `creds` against `host` with the client every command uses (user agent,
/// registries.conf `insecure` and `blocked`, certs.d); a refusal is skopeo's
/// "invalid username/password".
async fn check(
    global: &GlobalOpts,
    a: &LoginArgs,
    host: &str,
    key: &str,
    creds: Credentials,
) -> Result<()> {
    let api_host = if host == "docker.io" {
        "registry-1.docker.io"
    } else {
        host
    };
    let opts = DockerOptions {
        tls_verify: a.tls_verify.or(global.tls_verify),
        cert_dir: a.cert_dir.clone(),
        credentials: CredentialChoice::Given(creds),
        user_agent_prefix: global.user_agent_prefix.clone(),
        timeout: super::DEFAULT_REQUEST_TIMEOUT,
        registries: Some(global.registries()?),
        ..DockerOptions::default()
    };
    let client = connect_with_key(host, api_host, key, &opts)?;
    client.check_login().await.map_err(|e| match e.kind() {
        crate::ErrorKind::Unauthorized => {
            tracing::debug!("login refused: {e}");
            Error::Unauthorized(auth::messages::invalid_credentials(key))
        }
        _ => e.context(format!("logging in to {host}")),
    })
}

pub fn logout(_global: &GlobalOpts, a: LogoutArgs) -> Result<()> {
    let env = AuthEnv::from_process();
    let path = auth::write_path(&env, a.authfile.as_deref())?;
    if a.all {
        if !a.registry.is_empty() {
            return Err(Error::invalid(auth::messages::LOGOUT_ALL_WITH_ARGS));
        }
        auth::remove_all(&path)?;
        return write_stdout(format!("{}\n", auth::messages::REMOVED_ALL).as_bytes());
    }
    let reg = match a.registry.as_slice() {
        [] => return Err(Error::invalid(auth::messages::LOGOUT_NO_REGISTRY)),
        [one] => one,
        _ => return Err(Error::invalid(auth::messages::LOGOUT_TOO_MANY)),
    };
    let key = auth::validate_key(reg)?;
    if auth::remove(&path, &key)? {
        write_stdout(format!("{}\n", auth::messages::removed(&key)).as_bytes())
    } else {
        Err(Error::other(auth::messages::not_logged_in(&key)))
    }
}

/// Asks on the terminal; `secret` turns echo off.
fn prompt(label: &str, secret: bool) -> Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Error::invalid(format!(
            "{} not given and standard input is not a terminal",
            label.trim_end_matches(": ").to_lowercase()
        )));
    }
    let mut err = std::io::stderr();
    let _ = write!(err, "{label}");
    let _ = err.flush();
    let echo = if secret { EchoOff::new() } else { None };
    let mut line = String::new();
    let r = stdin.lock().read_line(&mut line);
    drop(echo);
    if secret {
        let _ = writeln!(err);
    }
    r.map_err(|e| Error::Io(e).context("reading from the terminal"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Terminal echo switched off until dropped.
struct EchoOff(libc::termios);

impl EchoOff {
    fn new() -> Option<EchoOff> {
        // SAFETY: tcgetattr/tcsetattr on fd 0 with a termios we own.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return None;
            }
            let saved = t;
            t.c_lflag &= !libc::ECHO;
            if libc::tcsetattr(0, libc::TCSANOW, &t) != 0 {
                return None;
            }
            Some(EchoOff(saved))
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // SAFETY: restores the settings read in `new`.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, &self.0);
        }
    }
}
