//! System CA certificates, read lazily.
//!
//! OpenSSL reads a CA bundle *file* eagerly, and the TLS stack here reads it twice per
//! registry client: about 50 ms of CPU before the first byte is sent (measured with
//! callgrind: 98 % of a local `inspect --raw`). The hashed certificate *directory* holds
//! the same system certificates and is read only when a certificate is verified — never,
//! with `--tls-verify=false`. [`prefer_lazy_system_roots`] switches to the directory when
//! the bundle in effect is the system's and the directory is usable; a bundle the user
//! chose is left alone. Child processes get the original settings back
//! ([`restore_for_child`]).

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
const SYSTEM_DIR: &str = "/etc/ssl/certs";

/// `SSL_CERT_FILE` and `SSL_CERT_DIR` as the process found them, when they were changed.
static ORIGINAL: OnceLock<(Option<OsString>, Option<OsString>)> = OnceLock::new();

/// Call at the start of `main`, before any thread exists.
pub fn prefer_lazy_system_roots() {
    let file = std::env::var_os("SSL_CERT_FILE");
    let dir = std::env::var_os("SSL_CERT_DIR");
    let system_file = file
        .as_deref()
        .is_none_or(|f| Path::new(f) == Path::new(SYSTEM_BUNDLE));
    let system_dir = dir
        .as_deref()
        .is_none_or(|d| Path::new(d) == Path::new(SYSTEM_DIR));
    if !system_file || !system_dir || !Path::new(SYSTEM_BUNDLE).exists() || !has_hashed_links() {
        return;
    }
    let _ = ORIGINAL.set((file, dir));
    // SAFETY (of the environment edit): called first thing in main, single-threaded.
    std::env::set_var("SSL_CERT_FILE", "/dev/null");
    std::env::set_var("SSL_CERT_DIR", SYSTEM_DIR);
}

/// Gives a child process the certificate settings the user had.
pub fn restore_for_child(cmd: &mut Command) {
    if let Some((file, dir)) = ORIGINAL.get() {
        match file {
            Some(f) => cmd.env("SSL_CERT_FILE", f),
            None => cmd.env_remove("SSL_CERT_FILE"),
        };
        match dir {
            Some(d) => cmd.env("SSL_CERT_DIR", d),
            None => cmd.env_remove("SSL_CERT_DIR"),
        };
    }
}

/// Whether the directory has OpenSSL's `HASH.0` links (made by update-ca-certificates).
fn has_hashed_links() -> bool {
    std::fs::read_dir(SYSTEM_DIR)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .any(|e| e.file_name().to_string_lossy().ends_with(".0"))
        })
        .unwrap_or(false)
}
