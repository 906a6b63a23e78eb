//! Copy progress for people: skopeo's plain lines on stdout (`Copying blob sha256:…`),
//! and one summary line with bytes and time. `-q` silences it.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Where progress goes.
pub struct Progress {
    out: Option<Mutex<Box<dyn Write + Send>>>,
    started: Instant,
    bytes: AtomicU64,
    blobs_copied: AtomicU64,
    blobs_skipped: AtomicU64,
}

impl Progress {
    /// Lines to stdout.
    pub fn stdout() -> Progress {
        Progress::to(Box::new(std::io::stdout()))
    }

    pub fn to(w: Box<dyn Write + Send>) -> Progress {
        Progress {
            out: Some(Mutex::new(w)),
            ..Progress::quiet()
        }
    }

    pub fn quiet() -> Progress {
        Progress {
            out: None,
            started: Instant::now(),
            bytes: AtomicU64::new(0),
            blobs_copied: AtomicU64::new(0),
            blobs_skipped: AtomicU64::new(0),
        }
    }

    pub fn line(&self, s: &str) {
        if let Some(o) = &self.out {
            let mut o = o.lock().unwrap();
            // Progress is best effort: a closed stdout must not fail the copy.
            let _ = writeln!(o, "{s}");
            let _ = o.flush();
        }
    }

    pub fn blob_started(&self, kind: &str, digest: &str) {
        self.line(&format!("Copying {kind} {digest}"));
    }

    pub fn blob_skipped(&self, kind: &str, digest: &str) {
        self.blobs_skipped.fetch_add(1, Ordering::Relaxed);
        self.line(&format!("Copying {kind} {digest} skipped: already exists"));
    }

    pub fn blob_done(&self, bytes: u64) {
        self.blobs_copied.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Blobs copied, blobs skipped, bytes written.
    pub fn totals(&self) -> (u64, u64, u64) {
        (
            self.blobs_copied.load(Ordering::Relaxed),
            self.blobs_skipped.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }

    pub fn summary(&self) {
        let (copied, skipped, bytes) = self.totals();
        let secs = self.started.elapsed().as_secs_f64();
        self.line(&format!(
            "Copied {copied} blob{} ({}) and skipped {skipped} in {secs:.2}s",
            if copied == 1 { "" } else { "s" },
            human_bytes(bytes)
        ));
    }
}

/// `1.5 MiB`-style sizes.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(200 * 1024 * 1024), "200.0 MiB");
    }
}
