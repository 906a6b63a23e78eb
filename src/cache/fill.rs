//! Fetching chunks: one task per started flight reads the fetcher's body, stores every
//! whole chunk it passes through (all of them when the server ignored Range), resolves
//! the flights waiting on them, and verifies and promotes the blob once every chunk is
//! present.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;

use super::index::{Entry, Key};
use super::partial::{Finish, Partial, Stored};
use super::state::{Arrived, BlobState, FillJob, Gen, JobKind, Outcome};
use super::{blocking, BlobKey, RangeFetcher, Shared};
use crate::error::{Error, Result};

/// A fetch failure that took at least this long (a stall, a timeout) hurries the blob's
/// next fetches for a moment (see [`Shared::fetch_idle`]).
const SLOW_FAILURE: Duration = Duration::from_secs(1);

type Pending = HashMap<u64, (u64, watch::Sender<Option<Outcome>>)>;

/// Reads until `buf` is full or the body ends; the number of bytes read.
async fn read_full(
    body: &mut (dyn AsyncRead + Send + Unpin),
    buf: &mut [u8],
    idle: Duration,
) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let got = tokio::time::timeout(idle, body.read(&mut buf[n..]))
            .await
            .map_err(|_| Error::Network(format!("no data for {}s", idle.as_secs())))??;
        if got == 0 {
            break;
        }
        n += got;
    }
    Ok(n)
}

/// What became of a chunk handed to [`Shared::store_chunk`].
enum Store {
    Stored,
    /// Neither the budget nor the filesystem limit has room, even after eviction.
    NoRoom,
    /// The files were promoted or deleted meanwhile.
    Stale,
    Failed(std::io::Error),
}

impl Shared {
    /// Runs one flight to its end; every sender is resolved whatever happens.
    pub(crate) async fn fill(
        self: Arc<Self>,
        state: Arc<BlobState>,
        key: BlobKey,
        job: FillJob,
        fetcher: Arc<dyn RangeFetcher>,
    ) {
        let started = std::time::Instant::now();
        let p = job.part.clone();
        let req = p.chunk_range(job.chunks.start).start..p.chunk_range(job.chunks.end - 1).end;
        let mut pending: Pending = job
            .senders
            .into_iter()
            .map(|(c, id, tx)| (c, (id, tx)))
            .collect();
        let _permit = match &job.permits {
            Some(s) => s.clone().acquire_owned().await.ok(),
            None => None,
        };
        let res = self
            .stream_chunks(
                &state,
                &key,
                job.kind,
                &p,
                req.clone(),
                &mut pending,
                &*fetcher,
            )
            .await;
        if pending.is_empty() {
            return;
        }
        let err = match res {
            Err(e) => e,
            Ok(()) => Error::Network("the response ended before the requested bytes".into()),
        };
        let err = Arc::new(err.context(format!(
            "fetching bytes {}-{} of blob {}",
            req.start, req.end, key.digest
        )));
        // Only a failure that took long (a stall, a timeout) is worth not repeating.
        if err.kind() == crate::ErrorKind::Network && started.elapsed() >= SLOW_FAILURE {
            *state.hints.failed.lock().unwrap() = Some((std::time::Instant::now(), err.clone()));
        }
        for (c, (id, tx)) in pending.drain() {
            state.resolve(c, id, tx, Err(err.clone()));
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn stream_chunks(
        self: &Arc<Self>,
        state: &Arc<BlobState>,
        key: &BlobKey,
        kind: JobKind,
        p: &Arc<Partial>,
        req: Range<u64>,
        pending: &mut Pending,
        fetcher: &dyn RangeFetcher,
    ) -> Result<()> {
        let idle = self.fetch_idle(state);
        let fetched = tokio::time::timeout(idle, fetcher.fetch(key, req.clone()))
            .await
            .map_err(|_| Error::Network(format!("no answer for {}s", idle.as_secs())))??;
        if fetched.offset > req.start {
            return Err(Error::other(format!(
                "the fetcher answered from offset {}, after the requested {}",
                fetched.offset, req.start
            )));
        }
        let mut body = fetched.body;
        let cs = p.chunk_size();
        let mut c = fetched.offset.div_ceil(cs);
        let skip = (c * cs).min(p.size()) - fetched.offset;
        if skip > 0 {
            let mut sink = vec![0u8; skip.min(1 << 20) as usize];
            let mut left = skip;
            while left > 0 {
                let n = left.min(sink.len() as u64) as usize;
                let got = read_full(&mut body, &mut sink[..n], idle).await?;
                self.bytes_fetched.fetch_add(got as u64, Ordering::Relaxed);
                if got < n {
                    return Ok(());
                }
                left -= n as u64;
            }
        }
        // Past the asked range, keep going only while the body has more (a server that
        // ignored Range): those chunks are paid for already.
        let mut extra = false;
        while c < p.chunk_count() {
            let r = p.chunk_range(c);
            let mut buf = vec![0u8; (r.end - r.start) as usize];
            let got = read_full(&mut body, &mut buf, idle).await?;
            self.bytes_fetched.fetch_add(got as u64, Ordering::Relaxed);
            if r.start >= req.end && got > 0 {
                extra = true;
            }
            if got < buf.len() {
                break;
            }
            let stored = self
                .chunk_arrived(state, kind, p, c, Bytes::from(buf), pending)
                .await?;
            if !stored && pending.is_empty() {
                break; // nowhere to keep more and nobody waiting
            }
            c += 1;
        }
        let honoured = fetched.offset == req.start && !extra;
        let _ = state.hints.ranges.compare_exchange(
            0,
            if honoured { 1 } else { 2 },
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        Ok(())
    }

    /// How long a new fetch of the blob waits for each answer: the configured timeout,
    /// or [`super::HURRIED_TIMEOUT`] (when shorter) within [`super::FAILURE_MEMORY`] of
    /// a fetch of it that stalled. The kernel reads a page again at once when its
    /// read-ahead failed, so a stalled registry costs a reader about one timeout, not
    /// two, and a registry that is back answers the hurried fetch at once.
    pub(crate) fn fetch_idle(&self, state: &BlobState) -> Duration {
        let normal = self.config.fetch_timeout;
        match &*state.hints.failed.lock().unwrap() {
            Some((at, _)) if at.elapsed() < super::FAILURE_MEMORY => {
                normal.min(super::HURRIED_TIMEOUT)
            }
            _ => normal,
        }
    }

    /// Stores chunk `c` and resolves its waiters; `Ok(false)` when it was not stored.
    async fn chunk_arrived(
        self: &Arc<Self>,
        state: &Arc<BlobState>,
        kind: JobKind,
        p: &Arc<Partial>,
        c: u64,
        bytes: Bytes,
        pending: &mut Pending,
    ) -> Result<bool> {
        let store = {
            let (this, hex, p, b) = (self.clone(), state.hex.clone(), p.clone(), bytes.clone());
            blocking(move || Ok(this.store_chunk(&hex, &p, c, &b))).await?
        };
        let skip_all = |pending: &mut Pending| {
            for (c, (id, tx)) in pending.drain() {
                state.resolve(c, id, tx, Ok(Arrived::Skipped));
            }
        };
        match (store, kind) {
            (Store::Stored, _) => {
                state.hints.failed.lock().unwrap().take();
                if p.all_present() {
                    // The chunk that completes the blob is only handed out once verified.
                    if let Err(e) = self.finish(state).await {
                        let e = Arc::new(e);
                        for (c, (id, tx)) in pending.drain() {
                            state.resolve(c, id, tx, Err(e.clone()));
                        }
                        return Ok(false);
                    }
                }
                if let Some((id, tx)) = pending.remove(&c) {
                    state.resolve(c, id, tx, Ok(Arrived::Stored));
                }
                Ok(true)
            }
            (_, JobKind::Demand) => {
                if let Some((id, tx)) = pending.remove(&c) {
                    let start = p.chunk_range(c).start;
                    state.resolve(c, id, tx, Ok(Arrived::Passed { start, bytes }));
                }
                Ok(false)
            }
            (Store::NoRoom, JobKind::Whole) => Err(Error::Io(std::io::Error::from_raw_os_error(
                libc::ENOSPC,
            ))
            .context(format!(
                "no room within the cache budget of {} bytes",
                self.config.max_bytes
            ))),
            (Store::Failed(e), JobKind::Whole) => Err(Error::Io(e).context("storing in the cache")),
            (_, _) => {
                skip_all(pending);
                Ok(false)
            }
        }
    }

    /// Writes a chunk within the budget (blocking).
    fn store_chunk(&self, hex: &str, p: &Partial, c: u64, bytes: &[u8]) -> Store {
        if p.is_present(c) {
            return Store::Stored;
        }
        let key = Key::Blob(hex.to_string());
        let n = bytes.len() as u64;
        if !self.reserve(&key, n) {
            tracing::debug!("cache: no room for chunk {c} of sha256:{hex}");
            return Store::NoRoom;
        }
        let res = p.write_chunk(c, bytes);
        self.settle(&key, n, matches!(res, Ok(Stored::Written)));
        match res {
            Ok(Stored::Written) | Ok(Stored::AlreadyPresent) => Store::Stored,
            Ok(Stored::Stale) => Store::Stale,
            Err(e) => {
                tracing::warn!("cache: storing chunk {c} of sha256:{hex}: {e}");
                Store::Failed(e)
            }
        }
    }

    /// Verifies a full partial blob and promotes it; a mismatch deletes it and errors.
    pub(crate) async fn finish(self: &Arc<Self>, state: &Arc<BlobState>) -> Result<()> {
        let _one = state.finishing.lock().await;
        let (this, st) = (self.clone(), state.clone());
        blocking(move || this.finish_blocking(&st)).await
    }

    fn finish_blocking(&self, state: &BlobState) -> Result<()> {
        let Gen::Partial(p) = state.current() else {
            return Ok(());
        };
        // Hash without holding the generation lock: readers of present chunks go on.
        let outcome = p.finish(&self.layout, &state.hex)?;
        let mut g = state.gen.lock().unwrap();
        let same = matches!(&g.gen, Gen::Partial(q) if Arc::ptr_eq(q, &p));
        let key = Key::Blob(state.hex.clone());
        match outcome {
            Finish::NotFull => Ok(()),
            Finish::Stale => {
                if same {
                    state.set_gen(&mut g, Gen::Absent);
                    drop(g);
                    // The next plan looks at what is on disk now.
                    self.reload(state)?;
                }
                Ok(())
            }
            Finish::Promoted(f) => {
                if same {
                    state.set_gen(&mut g, Gen::Complete(Arc::new(f)));
                }
                self.index.lock().unwrap().set(
                    &key,
                    Entry {
                        bytes: p.size(),
                        complete: true,
                    },
                );
                Ok(())
            }
            Finish::Mismatch(actual) => {
                if same {
                    state.set_gen(&mut g, Gen::Absent);
                }
                self.index.lock().unwrap().remove(&key);
                drop(g);
                self.note_failure(&state.hex);
                Err(Error::DigestMismatch {
                    what: format!("cached blob {}", state.digest),
                    expected: state.digest.clone(),
                    actual: format!("sha256:{actual}"),
                })
            }
        }
    }

    /// Counts a verification failure of blob `hex` and tells the subscribers.
    pub(crate) fn note_failure(&self, hex: &str) {
        *self
            .failures
            .lock()
            .unwrap()
            .entry(hex.to_string())
            .or_default() += 1;
        tracing::warn!("cache: blob sha256:{hex} did not match its digest; its bytes were dropped");
        let _ = self.failed_tx.send(format!("sha256:{hex}"));
    }

    /// Re-reads which files back the blob (blocking).
    pub(crate) fn reload(&self, state: &BlobState) -> std::io::Result<()> {
        let mut g = state.gen.lock().unwrap();
        let gen = super::state::load(&self.layout, &state.hex)?;
        state.set_gen(&mut g, gen);
        Ok(())
    }
}
