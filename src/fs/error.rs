//! The filesystem core's error: a kind the adapter turns into an errno (in one place,
//! [`FsError::errno`]) plus a message for the log.

use std::fmt;

use crate::error::{Error, ErrorKind};

/// What went wrong, as far as the kernel needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsErrorKind {
    /// The name or inode does not exist (ENOENT).
    NotFound,
    /// The registry refused the credentials, or there were none (EACCES).
    Access,
    /// The registry is unreachable, timed out, or sent something unusable (EIO).
    Io,
    /// A write outside `copy-to/` (EROFS).
    ReadOnly,
    /// An operation this filesystem never allows, e.g. `mkdir` in `copy-to/` (EPERM).
    NotPermitted,
    /// A copy job is running (EBUSY).
    Busy,
    /// A directory operation on a file (ENOTDIR).
    NotDir,
    /// A file operation on a directory (EISDIR).
    IsDir,
    /// A copy job of that name exists (EEXIST).
    Exists,
    /// Malformed request, e.g. a job name ending in `.status` (EINVAL).
    Invalid,
    /// Unknown file handle (EBADF).
    BadHandle,
    /// A job request larger than allowed (EFBIG).
    TooBig,
    /// No extended attribute of that name (ENODATA).
    NoData,
}

/// An error of the filesystem core.
#[derive(Clone, PartialEq, Eq)]
pub struct FsError {
    kind: FsErrorKind,
    message: String,
}

/// Result of a filesystem operation.
pub type FsResult<T> = std::result::Result<T, FsError>;

impl FsError {
    pub fn new(kind: FsErrorKind, message: impl Into<String>) -> FsError {
        FsError {
            kind,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> FsError {
        FsError::new(FsErrorKind::NotFound, message)
    }

    pub fn io(message: impl Into<String>) -> FsError {
        FsError::new(FsErrorKind::Io, message)
    }

    pub fn read_only() -> FsError {
        FsError::new(
            FsErrorKind::ReadOnly,
            "the mount is read-only outside copy-to/",
        )
    }

    pub fn kind(&self) -> FsErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The errno to reply with. The only place that maps errors to errno values.
    pub fn errno(&self) -> i32 {
        match self.kind {
            FsErrorKind::NotFound => libc::ENOENT,
            FsErrorKind::Access => libc::EACCES,
            FsErrorKind::Io => libc::EIO,
            FsErrorKind::ReadOnly => libc::EROFS,
            FsErrorKind::NotPermitted => libc::EPERM,
            FsErrorKind::Busy => libc::EBUSY,
            FsErrorKind::NotDir => libc::ENOTDIR,
            FsErrorKind::IsDir => libc::EISDIR,
            FsErrorKind::Exists => libc::EEXIST,
            FsErrorKind::Invalid => libc::EINVAL,
            FsErrorKind::BadHandle => libc::EBADF,
            FsErrorKind::TooBig => libc::EFBIG,
            FsErrorKind::NoData => libc::ENODATA,
        }
    }
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for FsError {}

/// Backend errors: not found stays not found, refused credentials become EACCES, and
/// everything else (network, timeouts, bad documents, digest mismatches) is EIO.
impl From<Error> for FsError {
    fn from(e: Error) -> FsError {
        let kind = match e.kind() {
            ErrorKind::NotFound => FsErrorKind::NotFound,
            ErrorKind::Unauthorized => FsErrorKind::Access,
            _ => FsErrorKind::Io,
        };
        FsError::new(kind, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_errors_map_to_errno() {
        let cases = [
            (Error::NotFound("manifest unknown".into()), libc::ENOENT),
            (Error::Unauthorized("denied".into()), libc::EACCES),
            (Error::Network("timeout".into()), libc::EIO),
            (Error::invalid("bad json"), libc::EIO),
            (
                Error::NotFound("x".into()).context("fetching tags"),
                libc::ENOENT,
            ),
        ];
        for (e, errno) in cases {
            let msg = e.to_string();
            let fe = FsError::from(e);
            assert_eq!(fe.errno(), errno, "{msg}");
            assert_eq!(fe.message(), msg);
        }
        assert_eq!(FsError::read_only().errno(), libc::EROFS);
        assert_eq!(
            FsError::new(FsErrorKind::Busy, "running").errno(),
            libc::EBUSY
        );
    }
}
