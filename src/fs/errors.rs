//! `MOUNT/.scry/errors`: the mount's recent failures with their reasons, readable with
//! `cat`, so that an `EIO` in a shell can be explained without the daemon's log.
//!
//! One line per failure, oldest first: the time (UTC), the errno's name, the operation
//! with the path it was about, and the reason. A failure repeated back to back is kept
//! once with a count. Names that do not exist (`ENOENT`) are not recorded: shells and
//! file managers ask for many, and the errno says all there is.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;

use super::error::{FsError, FsErrorKind};

/// How many distinct failures are kept.
pub const KEPT: usize = 100;

struct Note {
    at: chrono::DateTime<chrono::Utc>,
    errno: &'static str,
    what: String,
    reason: String,
    times: u64,
}

#[derive(Default)]
pub(crate) struct ErrorLog {
    notes: Mutex<VecDeque<Note>>,
}

impl ErrorLog {
    /// Records that `what` (an operation and its path) failed with `e`.
    pub fn note(&self, what: &str, e: &FsError) {
        if e.kind() == FsErrorKind::NotFound {
            return;
        }
        let mut notes = self.notes.lock().unwrap_or_else(|p| p.into_inner());
        let now = chrono::Utc::now();
        if let Some(last) = notes.back_mut() {
            if last.what == what && last.reason == e.message() {
                last.times += 1;
                last.at = now;
                return;
            }
        }
        if notes.len() == KEPT {
            notes.pop_front();
        }
        notes.push_back(Note {
            at: now,
            errno: errno_name(e.errno()),
            what: what.to_string(),
            reason: e.message().replace('\n', " "),
            times: 1,
        });
    }

    /// The file's text.
    pub fn text(&self) -> Bytes {
        let notes = self.notes.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        for n in notes.iter() {
            let times = match n.times {
                1 => String::new(),
                k => format!(" ({k} times)"),
            };
            out.push_str(&format!(
                "{} {} {}: {}{times}\n",
                n.at.format("%Y-%m-%dT%H:%M:%SZ"),
                n.errno,
                n.what,
                n.reason
            ));
        }
        Bytes::from(out)
    }
}

/// The symbolic name of the errnos the mount answers with.
fn errno_name(errno: i32) -> &'static str {
    match errno {
        libc::ENOENT => "ENOENT",
        libc::EACCES => "EACCES",
        libc::EIO => "EIO",
        libc::EROFS => "EROFS",
        libc::EPERM => "EPERM",
        libc::EBUSY => "EBUSY",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EEXIST => "EEXIST",
        libc::EINVAL => "EINVAL",
        libc::EBADF => "EBADF",
        libc::EFBIG => "EFBIG",
        _ => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_repeats_once_skips_missing_names_and_keeps_the_newest() {
        let log = ErrorLog::default();
        log.note("ls /a", &FsError::not_found("no such name"));
        assert!(log.text().is_empty());
        let io = FsError::io("registry a: connection refused");
        log.note("ls /a", &io);
        log.note("ls /a", &io);
        log.note("open /a/b", &FsError::new(FsErrorKind::Access, "denied"));
        let text = String::from_utf8(log.text().to_vec()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].ends_with(" EIO ls /a: registry a: connection refused (2 times)"));
        assert!(lines[1].ends_with(" EACCES open /a/b: denied"));
        for i in 0..KEPT + 5 {
            log.note(&format!("read /x{i}"), &io);
        }
        let text = String::from_utf8(log.text().to_vec()).unwrap();
        assert_eq!(text.lines().count(), KEPT);
        assert!(text
            .lines()
            .last()
            .unwrap()
            .contains(&format!("/x{}", KEPT + 4)));
    }
}
