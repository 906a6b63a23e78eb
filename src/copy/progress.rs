//! Copy progress for people: on a terminal, a bar per blob (bytes, rate, time left)
//! that leaves one `Copying blob … done` line when the blob is complete; otherwise
//! skopeo's plain lines on stdout (`Copying blob sha256:…`) and, for a blob still
//! moving, a line with bytes and rate every few seconds ([`INTERVAL_ENV`]). Either way
//! one summary line with bytes and time at the end. `-q` silences it.

use std::io::Write;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, ReadBuf};

use crate::transport::BlobStream;

/// Seconds between the progress lines of a blob still moving when output is not a
/// terminal (default 5; fractions allowed).
pub const INTERVAL_ENV: &str = "SCRY_PROGRESS_INTERVAL";

fn line_interval() -> Duration {
    std::env::var(INTERVAL_ENV)
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(5))
}

type Sink = Mutex<Box<dyn Write + Send>>;

/// Where progress goes.
pub struct Progress {
    out: Option<Arc<Sink>>,
    /// Bars on a terminal; `None` prints lines.
    bars: Option<indicatif::MultiProgress>,
    /// Told of every byte of a blob as it passes, and of skipped blobs' sizes (for a
    /// copy-to job's status).
    on_bytes: Option<Arc<dyn Fn(u64) + Send + Sync>>,
    interval: Duration,
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
            out: Some(Arc::new(Mutex::new(w))),
            ..Progress::quiet()
        }
    }

    pub fn quiet() -> Progress {
        Progress {
            out: None,
            bars: None,
            on_bytes: None,
            interval: line_interval(),
            started: Instant::now(),
            bytes: AtomicU64::new(0),
            blobs_copied: AtomicU64::new(0),
            blobs_skipped: AtomicU64::new(0),
        }
    }

    /// Silent, but `f` hears of every byte copied as it passes (and of the size of every
    /// blob skipped because the destination has it).
    pub fn counting(f: impl Fn(u64) + Send + Sync + 'static) -> Progress {
        Progress {
            on_bytes: Some(Arc::new(f)),
            ..Progress::quiet()
        }
    }

    pub fn line(&self, s: &str) {
        if let Some(b) = &self.bars {
            let _ = b.println(s);
            return;
        }
        if let Some(o) = &self.out {
            write_line(o, s);
        }
    }

    /// Announces a blob about to be copied (a line, when there are no bars; the bar
    /// comes with [`Progress::track`]).
    pub fn announce(&self, kind: &str, digest: &str) {
        if self.bars.is_none() {
            self.line(&format!("Copying {kind} {digest}"));
        }
    }

    /// Returns a blob's stream, counted as its bytes pass: on a bar, in progress lines,
    /// and for [`Progress::counting`].
    pub fn track(
        &self,
        kind: &str,
        digest: &str,
        size: Option<u64>,
        stream: BlobStream,
    ) -> BlobStream {
        let show = if let Some(bars) = &self.bars {
            let bar = bars.add(match size {
                Some(n) => indicatif::ProgressBar::new(n),
                None => indicatif::ProgressBar::no_length(),
            });
            let style = indicatif::ProgressStyle::with_template(
                "Copying {prefix} {msg:12} {bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_prefix(kind.to_string());
            bar.set_message(short(digest));
            Show::Bar(bar, bars.clone())
        } else if let Some(out) = &self.out {
            Show::Lines {
                out: out.clone(),
                every: self.interval,
                last: Instant::now(),
            }
        } else if self.on_bytes.is_some() {
            Show::Nothing
        } else {
            return stream;
        };
        Box::pin(Counted {
            inner: stream,
            kind: kind.to_string(),
            digest: digest.to_string(),
            size,
            seen: 0,
            started: Instant::now(),
            show,
            on_bytes: self.on_bytes.clone(),
            finished: false,
        })
    }

    pub fn blob_skipped(&self, kind: &str, digest: &str, size: i64) {
        self.blobs_skipped.fetch_add(1, Ordering::Relaxed);
        if let Some(f) = &self.on_bytes {
            f(size.max(0) as u64);
        }
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

fn write_line(o: &Sink, s: &str) {
    let mut o = o.lock().unwrap_or_else(|e| e.into_inner());
    // Progress is best effort: a closed stdout must not fail the copy.
    let _ = writeln!(o, "{s}");
    let _ = o.flush();
}

/// The first 12 hex digits of a digest, as bars show it.
fn short(digest: &str) -> String {
    digest
        .split_once(':')
        .map_or(digest, |(_, h)| h)
        .chars()
        .take(12)
        .collect()
}

enum Show {
    Bar(indicatif::ProgressBar, indicatif::MultiProgress),
    Lines {
        out: Arc<Sink>,
        every: Duration,
        last: Instant,
    },
    Nothing,
}

/// A blob's stream, counted as it passes.
struct Counted {
    inner: BlobStream,
    kind: String,
    digest: String,
    size: Option<u64>,
    seen: u64,
    started: Instant,
    show: Show,
    on_bytes: Option<Arc<dyn Fn(u64) + Send + Sync>>,
    finished: bool,
}

impl Counted {
    fn passed(&mut self, n: u64) {
        self.seen += n;
        if let Some(f) = &self.on_bytes {
            f(n);
        }
        match &mut self.show {
            Show::Bar(bar, _) => bar.inc(n),
            Show::Lines { out, every, last } if last.elapsed() >= *every => {
                *last = Instant::now();
                let secs = self.started.elapsed().as_secs_f64().max(1e-3);
                let of = match self.size {
                    Some(t) => format!(" of {}", human_bytes(t)),
                    None => String::new(),
                };
                write_line(
                    out,
                    &format!(
                        "Copying {} {}: {}{of} ({}/s)",
                        self.kind,
                        self.digest,
                        human_bytes(self.seen),
                        human_bytes((self.seen as f64 / secs) as u64)
                    ),
                );
            }
            _ => {}
        }
        if self.size == Some(self.seen) {
            self.finish();
        }
    }

    /// The whole blob passed: its bar gives way to one `done` line.
    fn finish(&mut self) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        if let Show::Bar(bar, bars) = &self.show {
            bar.finish_and_clear();
            let _ = bars.println(format!(
                "Copying {} {} done {}",
                self.kind,
                short(&self.digest),
                human_bytes(self.seen)
            ));
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        // A blob abandoned part way (a failed copy) leaves no bar behind.
        if let (false, Show::Bar(bar, _)) = (self.finished, &self.show) {
            bar.finish_and_clear();
        }
    }
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
                self.finish();
            } else {
                self.passed(n);
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

    fn drain(mut s: BlobStream) -> Vec<u8> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut v = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut s, &mut v)
                .await
                .unwrap();
            v
        })
    }

    /// Counting sees every byte as it passes and skipped blobs' sizes; lines mode
    /// prints a line with bytes for a blob still moving.
    #[test]
    fn counts_live_and_prints_lines_for_a_moving_blob() {
        let seen = Arc::new(AtomicU64::new(0));
        let s2 = seen.clone();
        let p = Progress::counting(move |n| {
            s2.fetch_add(n, Ordering::Relaxed);
        });
        let data = vec![7u8; 300_000];
        let out = drain(p.track(
            "blob",
            "sha256:ab",
            Some(300_000),
            Box::pin(std::io::Cursor::new(data)),
        ));
        assert_eq!(out.len(), 300_000);
        assert_eq!(seen.load(Ordering::Relaxed), 300_000);
        p.blob_skipped("config", "sha256:cd", 1234);
        assert_eq!(seen.load(Ordering::Relaxed), 301_234);

        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let mut p = Progress::to(Box::new(buf.clone()));
        p.interval = Duration::ZERO;
        let data = vec![1u8; 100_000];
        drain(p.track(
            "blob",
            "sha256:ef",
            Some(100_000),
            Box::pin(std::io::Cursor::new(data)),
        ));
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(text.lines().count() >= 1, "{text}");
        assert!(
            text.lines()
                .all(|l| l.starts_with("Copying blob sha256:ef: ") && l.contains(" of 97.7 KiB (")),
            "{text}"
        );
    }
}
