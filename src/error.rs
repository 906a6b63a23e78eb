//! The library's error type. Callers branch on [`ErrorKind`]; everything else is context.
//!
//! One function maps an error to a process exit code ([`Error::exit_code`]) and one to an
//! errno for the mount ([`Error::errno`]).

use std::fmt;

/// What a caller may branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Manifest, blob, repository or file does not exist (ENOENT). Exit 2 only when the
    /// error is [`Error::ImageNotFound`]; a missing file, blob or repository exits 1.
    NotFound,
    /// Credentials missing or refused (exit 1, EACCES).
    Unauthorized,
    /// Bytes did not match their digest.
    DigestMismatch,
    /// A transport, media type or option that scry does not handle (yet).
    Unsupported,
    /// Malformed input: a reference, a manifest, a config file, a flag value.
    InvalidInput,
    /// The network or a remote server failed (connection, timeout, 5xx).
    Network,
    /// Local I/O.
    Io,
    /// Anything else.
    Other,
}

#[derive(thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    /// The image a reference names is not there: the registry said MANIFEST_UNKNOWN or
    /// NAME_UNKNOWN for its manifest, or an existing OCI layout or archive has no image
    /// by that name. Kind `NotFound`; the one error that exits 2, as in skopeo.
    #[error("{0}")]
    ImageNotFound(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    Network(String),
    #[error("{0}")]
    Io(std::io::Error),
    #[error("{0}")]
    Other(String),
    /// What was being done when `source` happened.
    #[error("{context}: {source}")]
    Context { context: String, source: Box<Error> },
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An I/O error that carries a scry error (as digest-checking streams produce) becomes
/// that error again, so its kind survives a trip through `std::io`.
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            if let Ok(inner) = e.into_inner().expect("checked above").downcast::<Error>() {
                return *inner;
            }
            unreachable!("checked above");
        }
        Error::Io(e)
    }
}

impl Error {
    /// Wraps this error in an `io::Error` (kind `InvalidData`) for streams; converting
    /// back with `From` restores it.
    pub fn into_io(self) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, self)
    }
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) | Error::ImageNotFound(_) => ErrorKind::NotFound,
            Error::Unauthorized(_) => ErrorKind::Unauthorized,
            Error::DigestMismatch { .. } => ErrorKind::DigestMismatch,
            Error::Unsupported(_) => ErrorKind::Unsupported,
            Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::Network(_) => ErrorKind::Network,
            // A missing file is a missing image for the local transports.
            Error::Io(e) if e.kind() == std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            Error::Io(_) => ErrorKind::Io,
            Error::Other(_) => ErrorKind::Other,
            Error::Context { source, .. } => source.kind(),
        }
    }

    /// Process exit code, as skopeo: 2 when the image was not found, 1 otherwise
    /// (a missing file, directory, blob or repository is 1).
    pub fn exit_code(&self) -> i32 {
        if self.is_image_not_found() {
            2
        } else {
            1
        }
    }

    /// Whether this is (or wraps) [`Error::ImageNotFound`].
    pub fn is_image_not_found(&self) -> bool {
        match self {
            Error::ImageNotFound(_) => true,
            Error::Context { source, .. } => source.is_image_not_found(),
            _ => false,
        }
    }

    /// errno for a filesystem reply.
    pub fn errno(&self) -> i32 {
        if let Some(code) = self.io_errno() {
            return code;
        }
        match self.kind() {
            ErrorKind::NotFound => libc::ENOENT,
            ErrorKind::Unauthorized => libc::EACCES,
            ErrorKind::InvalidInput => libc::EINVAL,
            ErrorKind::Unsupported => libc::ENOTSUP,
            _ => libc::EIO,
        }
    }

    /// Whether the reader of a pipe went away (`scry blob … | head`): not a failure.
    pub fn is_broken_pipe(&self) -> bool {
        self.io_errno() == Some(libc::EPIPE)
    }

    /// The OS error code of an underlying I/O error.
    fn io_errno(&self) -> Option<i32> {
        match self {
            Error::Io(e) => e.raw_os_error(),
            Error::Context { source, .. } => source.io_errno(),
            _ => None,
        }
    }

    pub fn context(self, context: impl Into<String>) -> Error {
        Error::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }

    pub fn invalid(msg: impl Into<String>) -> Error {
        Error::InvalidInput(msg.into())
    }

    pub fn other(msg: impl Into<String>) -> Error {
        Error::Other(msg.into())
    }
}

/// Adds what was being done to an error.
pub trait ResultExt<T> {
    fn context<C: Into<String>, F: FnOnce() -> C>(self, f: F) -> Result<T>;
}

impl<T, E: Into<Error>> ResultExt<T> for std::result::Result<T, E> {
    fn context<C: Into<String>, F: FnOnce() -> C>(self, f: F) -> Result<T> {
        self.map_err(|e| e.into().context(f()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_survives_context_and_maps_exit_codes() {
        let e = Error::ImageNotFound("manifest unknown".into()).context("reading docker://x/y:z");
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.exit_code(), 2);
        let blob = Error::NotFound("blob unknown".into()).context("reading blob");
        assert_eq!(blob.kind(), ErrorKind::NotFound);
        assert_eq!(blob.exit_code(), 1);
        let file = Error::from(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert_eq!(file.kind(), ErrorKind::NotFound);
        assert_eq!(file.exit_code(), 1);
        assert_eq!(e.errno(), libc::ENOENT);
        assert_eq!(e.to_string(), "reading docker://x/y:z: manifest unknown");
        let u = Error::Unauthorized("no".into()).context("a").context("b");
        assert_eq!(u.exit_code(), 1);
        assert_eq!(u.errno(), libc::EACCES);
    }
}
