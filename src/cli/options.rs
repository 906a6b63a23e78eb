//! Flags shared by several commands, with skopeo's names and Go-style boolean values.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::auth::Credentials;
use crate::error::{Error, Result};
use crate::manifest::PlatformChoice;
use crate::transport::docker::{CredentialChoice, DockerOptions};

pub use crate::goparse::{parse_go_bool, parse_go_duration};

/// Flags before the command name.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Global options")]
pub struct GlobalOpts {
    /// timeout for the command execution
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_go_duration)]
    pub command_timeout: Option<Duration>,
    /// enable debug output
    #[arg(long, global = true)]
    pub debug: bool,
    /// run the tool without any policy check
    #[arg(long, global = true)]
    pub insecure_policy: bool,
    /// use ARCH instead of the architecture of the machine for choosing images
    #[arg(long, global = true, value_name = "ARCH")]
    pub override_arch: Option<String>,
    /// use OS instead of the running OS for choosing images
    #[arg(long, global = true, value_name = "OS")]
    pub override_os: Option<String>,
    /// use VARIANT instead of the running architecture variant for choosing images
    #[arg(long, global = true, value_name = "VARIANT")]
    pub override_variant: Option<String>,
    /// Path to a trust policy file
    #[arg(long, global = true, value_name = "PATH")]
    pub policy: Option<PathBuf>,
    /// use registry configuration files in DIR (e.g. for container signature storage)
    #[arg(long = "registries.d", global = true, value_name = "DIR")]
    pub registries_d: Option<PathBuf>,
    /// use PATH as the registries configuration file
    #[arg(long, global = true, value_name = "PATH")]
    pub registries_conf: Option<PathBuf>,
    /// directory used to store temporary files
    #[arg(long, global = true, value_name = "DIR")]
    pub tmpdir: Option<PathBuf>,
    /// prefix to add to the user agent string
    #[arg(long, global = true, value_name = "PREFIX", hide = true)]
    pub user_agent_prefix: Option<String>,
    /// require HTTPS and verify certificates (deprecated global form)
    #[arg(long = "tls-verify", global = false, hide = true, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", value_parser = parse_go_bool)]
    pub tls_verify: Option<bool>,
    /// Version for scry
    #[arg(short = 'v', long = "version")]
    pub version: bool,
}

impl GlobalOpts {
    /// registries.conf as `--registries-conf` (or the defaults) names it, read once.
    pub fn registries(&self) -> Result<std::sync::Arc<crate::registries_conf::RegistriesConf>> {
        static LOADED: std::sync::OnceLock<std::sync::Arc<crate::registries_conf::RegistriesConf>> =
            std::sync::OnceLock::new();
        if let Some(c) = LOADED.get() {
            return Ok(c.clone());
        }
        let c = std::sync::Arc::new(crate::registries_conf::RegistriesConf::load(
            self.registries_conf.as_deref(),
        )?);
        Ok(LOADED.get_or_init(|| c).clone())
    }

    /// The trust policy copies must satisfy (`None` with `--insecure-policy` or when
    /// no policy file exists).
    pub fn policy(&self) -> Result<Option<crate::policy::Policy>> {
        if self.insecure_policy {
            return Ok(None);
        }
        crate::policy::Policy::load(self.policy.as_deref())
    }

    pub fn platform(&self) -> PlatformChoice {
        PlatformChoice {
            os: self.override_os.clone(),
            arch: self.override_arch.clone(),
            variant: self.override_variant.clone(),
        }
    }
}

/// How a command reaches one image: credentials, TLS, certificates.
#[derive(Args, Debug, Clone, Default)]
pub struct ImageOpts {
    /// path of the authentication file. Default is ${XDG_RUNTIME_DIR}/containers/auth.json
    #[arg(long, value_name = "PATH")]
    pub authfile: Option<PathBuf>,
    /// use certificates at PATH (*.crt, *.cert, *.key) to connect to the registry or daemon
    #[arg(long, value_name = "PATH")]
    pub cert_dir: Option<PathBuf>,
    /// Use USERNAME[:PASSWORD] for accessing the registry
    #[arg(long, value_name = "USERNAME[:PASSWORD]")]
    pub creds: Option<String>,
    /// Username for accessing the registry
    #[arg(long, value_name = "USERNAME")]
    pub username: Option<String>,
    /// Password for accessing the registry
    #[arg(long, value_name = "PASSWORD")]
    pub password: Option<String>,
    /// Access the registry anonymously
    #[arg(long)]
    pub no_creds: bool,
    /// Provide a Bearer token for accessing the registry
    #[arg(long, value_name = "TOKEN")]
    pub registry_token: Option<String>,
    /// require HTTPS and verify certificates when talking to the container registry or daemon
    #[arg(long = "tls-verify", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_go_bool, value_name = "BOOL")]
    pub tls_verify: Option<bool>,
    /// DIRECTORY to use to share blobs across OCI repositories
    #[arg(long, value_name = "DIRECTORY")]
    pub shared_blob_dir: Option<PathBuf>,
    /// use docker daemon host at HOST (docker-daemon: only)
    #[arg(long, value_name = "HOST")]
    pub daemon_host: Option<String>,
}

/// `--retry-times` / `--retry-delay`.
#[derive(Args, Debug, Clone, Default)]
pub struct RetryOpts {
    /// the number of times to possibly retry
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retry_times: u32,
    /// Fixed delay between retries (default: exponential backoff)
    #[arg(long, value_name = "DURATION", value_parser = parse_go_duration)]
    pub retry_delay: Option<Duration>,
}

impl ImageOpts {
    /// Resolves the credential flags, refusing contradictory combinations.
    pub fn credentials(&self) -> Result<CredentialChoice> {
        // The combinations skopeo refuses; a --registry-token wins over credentials.
        if self.creds.is_some() && self.no_creds {
            return Err(Error::invalid(
                "creds and no-creds cannot be specified at the same time",
            ));
        }
        if self.username.is_some() && self.no_creds {
            return Err(Error::invalid(
                "username and no-creds cannot be specified at the same time",
            ));
        }
        if self.creds.is_some() && self.username.is_some() {
            return Err(Error::invalid(
                "creds and username cannot be specified at the same time",
            ));
        }
        if let Some(t) = &self.registry_token {
            return Ok(CredentialChoice::Token(t.clone()));
        }
        if let Some(c) = &self.creds {
            return Ok(CredentialChoice::Given(Credentials::parse_creds(c)?));
        }
        match (&self.username, &self.password) {
            (Some(u), Some(p)) => {
                return Ok(CredentialChoice::Given(Credentials {
                    username: u.clone(),
                    password: p.clone(),
                }))
            }
            (Some(_), None) => return Err(Error::invalid("--username requires --password")),
            (None, Some(_)) => return Err(Error::invalid("--password requires --username")),
            (None, None) => {}
        }
        if self.no_creds {
            return Ok(CredentialChoice::Anonymous);
        }
        Ok(CredentialChoice::Lookup)
    }

    /// The library's registry options for these flags.
    pub fn docker_options(&self, global: &GlobalOpts, retry: &RetryOpts) -> Result<DockerOptions> {
        Ok(DockerOptions {
            tls_verify: self.tls_verify.or(global.tls_verify),
            cert_dir: self.cert_dir.clone(),
            authfile: self.authfile.clone(),
            credentials: self.credentials()?,
            retry_times: retry.retry_times,
            retry_delay: retry.retry_delay,
            user_agent_prefix: global.user_agent_prefix.clone(),
            timeout: super::DEFAULT_REQUEST_TIMEOUT,
            registries: Some(global.registries()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_flags_conflict() {
        let o = ImageOpts {
            creds: Some("a:b".into()),
            no_creds: true,
            ..Default::default()
        };
        assert!(o.credentials().is_err());
        let o = ImageOpts {
            username: Some("a".into()),
            ..Default::default()
        };
        assert!(o.credentials().is_err());
    }
}

/// Declares an image-options group whose flags carry a prefix (`--src-…`, `--dest-…`),
/// convertible into [`ImageOpts`].
macro_rules! prefixed_image_opts {
    ($name:ident, $p:literal, $creds_alias:literal, $heading:literal) => {
        #[derive(Args, Debug, Clone, Default)]
        #[command(next_help_heading = $heading)]
        pub struct $name {
            /// path of the authentication file. Default is ${XDG_RUNTIME_DIR}/containers/auth.json
            #[arg(id = concat!($p, "authfile"), long = concat!($p, "authfile"), value_name = "PATH")]
            pub authfile: Option<PathBuf>,
            /// use certificates at PATH (*.crt, *.cert, *.key) to connect to the registry or daemon
            #[arg(id = concat!($p, "cert-dir"), long = concat!($p, "cert-dir"), value_name = "PATH")]
            pub cert_dir: Option<PathBuf>,
            /// Use USERNAME[:PASSWORD] for accessing the registry
            #[arg(id = concat!($p, "creds"), long = concat!($p, "creds"), alias = $creds_alias, value_name = "USERNAME[:PASSWORD]")]
            pub creds: Option<String>,
            /// Username for accessing the registry
            #[arg(id = concat!($p, "username"), long = concat!($p, "username"), value_name = "USERNAME")]
            pub username: Option<String>,
            /// Password for accessing the registry
            #[arg(id = concat!($p, "password"), long = concat!($p, "password"), value_name = "PASSWORD")]
            pub password: Option<String>,
            /// Access the registry anonymously
            #[arg(id = concat!($p, "no-creds"), long = concat!($p, "no-creds"))]
            pub no_creds: bool,
            /// Provide a Bearer token for accessing the registry
            #[arg(id = concat!($p, "registry-token"), long = concat!($p, "registry-token"), value_name = "TOKEN")]
            pub registry_token: Option<String>,
            /// require HTTPS and verify certificates when talking to the container registry or daemon
            #[arg(id = concat!($p, "tls-verify"), long = concat!($p, "tls-verify"), num_args = 0..=1, require_equals = true,
                  default_missing_value = "true", value_parser = parse_go_bool, value_name = "BOOL")]
            pub tls_verify: Option<bool>,
            /// DIRECTORY to use to share blobs across OCI repositories
            #[arg(id = concat!($p, "shared-blob-dir"), long = concat!($p, "shared-blob-dir"), value_name = "DIRECTORY")]
            pub shared_blob_dir: Option<PathBuf>,
            /// use docker daemon host at HOST (docker-daemon: only)
            #[arg(id = concat!($p, "daemon-host"), long = concat!($p, "daemon-host"), value_name = "HOST")]
            pub daemon_host: Option<String>,
        }

        impl $name {
            /// As unprefixed options; `shared_authfile` is the command's `--authfile`.
            pub fn unprefixed(&self, shared_authfile: Option<&PathBuf>) -> ImageOpts {
                ImageOpts {
                    authfile: self.authfile.clone().or_else(|| shared_authfile.cloned()),
                    cert_dir: self.cert_dir.clone(),
                    creds: self.creds.clone(),
                    username: self.username.clone(),
                    password: self.password.clone(),
                    no_creds: self.no_creds,
                    registry_token: self.registry_token.clone(),
                    tls_verify: self.tls_verify,
                    shared_blob_dir: self.shared_blob_dir.clone(),
                    daemon_host: self.daemon_host.clone(),
                }
            }
        }
    };
}

prefixed_image_opts!(SrcImageOpts, "src-", "screds", "Source options");
prefixed_image_opts!(DestImageOpts, "dest-", "dcreds", "Destination options");
