//! Copy progress for people: on a terminal, a bar per blob (bytes, rate); otherwise
//! skopeo's plain lines on stdout (`Copying blob sha256:…`). Either way one summary line
//! with bytes and time at the end. `-q` silences it.

use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use crate::transport::BlobStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Where progress goes.
pub struct Progress {
    out: Option<Mutex<Box<dyn Write + Send>>>,
    /// Bars on a terminal; `None` prints lines.
    bars: Option<indicatif::MultiProgress>,
    /// Told the size of every blob written (for a copy-to job's status).
    on_blob: Option<Box<dyn Fn(u64) + Send + Sync>>,
    started: Instant,
    bytes: AtomicU64,
    blobs_copied: AtomicU64,
    blobs_skipped: AtomicU64,
}

impl Progress {
    /// Bars when stdout is a terminal, lines otherwise.
    pub fn stdout() -> Progress {
        let mut p = Progress::to(Box::new(std::io::stdout()));
        if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            p.bars = Some(indicatif::MultiProgress::with_draw_target(
                indicatif::ProgressDrawTarget::stdout(),
            ));
        }
        p
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
            bars: None,
            on_blob: None,
            started: Instant::now(),
            bytes: AtomicU64::new(0),
            blobs_copied: AtomicU64::new(0),
            blobs_skipped: AtomicU64::new(0),
        }
    }

    pub fn line(&self, s: &str) {
        if let Some(b) = &self.bars {
            let _ = b.println(s);
            return;
        }
        if let Some(o) = &self.out {
            let mut o = o.lock().unwrap();
            // Progress is best effort: a closed stdout must not fail the copy.
            let _ = writeln!(o, "{s}");
            let _ = o.flush();
        }
    }

    /// Announces a blob about to be copied (a line, when there are no bars; the bar
    /// comes with [`Progress::track`]).
    pub fn announce(&self, kind: &str, digest: &str) {
        if self.bars.is_none() {
            self.line(&format!("Copying {kind} {digest}"));
        }
    }

    /// Returns a blob's stream, counted on a bar when there are bars.
    pub fn track(
        &self,
        kind: &str,
        digest: &str,
        size: Option<u64>,
        stream: BlobStream,
    ) -> BlobStream {
        let Some(bars) = &self.bars else {
            return stream;
        };
        let bar = bars.add(match size {
            Some(n) => indicatif::ProgressBar::new(n),
            None => indicatif::ProgressBar::no_length(),
        });
        let style = indicatif::ProgressStyle::with_template(
            "Copying {prefix} {msg:12} {bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(kind.to_string());
        bar.set_message(
            digest
                .trim_start_matches("sha256:")
                .chars()
                .take(12)
                .collect::<String>(),
        );
        Box::pin(Counted { inner: stream, bar })
    }

    pub fn blob_skipped(&self, kind: &str, digest: &str) {
        self.blobs_skipped.fetch_add(1, Ordering::Relaxed);
        self.line(&format!("Copying {kind} {digest} skipped: already exists"));
    }

    /// Silent, but `f` hears of every blob written (its size in bytes).
    pub fn counting(f: impl Fn(u64) + Send + Sync + 'static) -> Progress {
        Progress {
            on_blob: Some(Box::new(f)),
            ..Progress::quiet()
        }
    }

    pub fn blob_done(&self, bytes: u64) {
        if let Some(f) = &self.on_blob {
            f(bytes);
        }
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

/// A stream that moves its bar as bytes pass, finishing it at the end.
struct Counted {
    inner: BlobStream,
    bar: indicatif::ProgressBar,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = self.inner.as_mut().poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &r {
            let n = (buf.filled().len() - before) as u64;
            if n == 0 {
                self.bar.finish_with_message("done");
            } else {
                self.bar.inc(n);
            }
        }
        r
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

/// Keeps the announcements of blobs copied concurrently in the order of the manifest:
/// job `i` announces its blob between [`Turns::wait`]`(i)` and [`Turns::pass`]`(i)`.
/// A turn is held only for printing, never while bytes move.
pub(crate) struct Turns(tokio::sync::watch::Sender<usize>);

impl Turns {
    pub fn new() -> Turns {
        Turns(tokio::sync::watch::Sender::new(0))
    }

    /// Waits until every job before `i` has passed.
    pub async fn wait(&self, i: usize) {
        let mut rx = self.0.subscribe();
        // The sender lives as long as `self`: this cannot fail while waited on.
        let _ = rx.wait_for(|next| *next >= i).await;
    }

    /// Lets job `i + 1` announce.
    pub fn pass(&self, i: usize) {
        self.0.send_if_modified(|next| {
            let moved = *next <= i;
            if moved {
                *next = i + 1;
            }
            moved
        });
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
