//! One blob's in-process state while anything uses it (a pin, a read, a fetch): which
//! generation of its files is current, the chunk fetches in flight (single-flight), and
//! the sequential-read streams that drive read-ahead.
//!
//! Locking: `gen` may be held across file I/O (opening, flock waits) and is therefore
//! only locked on blocking threads; `inflight` is never held across I/O. Order: `gen`
//! before `inflight`, both before the cache index.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use tokio::sync::watch;

use super::index::Key;
use super::layout::{is_at, Layout};
use super::lock::lock_shared;
use super::partial::Partial;
use super::{BlobKey, Shared};
use crate::error::{Error, Result};

/// How a fetched chunk reached its waiters.
#[derive(Clone, Debug)]
pub(crate) enum Arrived {
    /// Stored in the partial file the flight was started for.
    Stored,
    /// Not stored (no room, or the files changed meanwhile): the bytes at `start`.
    Passed { start: u64, bytes: Bytes },
    /// Not fetched after all (a read-ahead given up, files that changed): plan again.
    Skipped,
}

pub(crate) type Outcome = std::result::Result<Arrived, Arc<Error>>;
pub(crate) type Flight = watch::Receiver<Option<Outcome>>;

/// The files backing a blob right now.
#[derive(Clone)]
pub(crate) enum Gen {
    Absent,
    Complete(Arc<File>),
    Partial(Arc<Partial>),
}

#[derive(Clone, Copy)]
struct Stream {
    next: u64,
    window: u64,
}

pub(crate) struct GenState {
    loaded: bool,
    pub(crate) gen: Gen,
}

/// What this process learnt about reading a blob; outlives [`BlobState`] (kept for
/// recently read blobs), so reads without a pin still grow their read-ahead.
#[derive(Default)]
pub(crate) struct Hints {
    streams: Mutex<Vec<Stream>>,
    /// 0 unknown, 1 the fetcher honours ranges, 2 it answers with more than asked.
    pub(crate) ranges: AtomicU8,
    /// When the last fetch of the blob that stalled failed, while no fetch has
    /// succeeded since.
    pub(crate) failed: Mutex<Option<(std::time::Instant, Arc<Error>)>>,
}

pub(crate) struct BlobState {
    pub(crate) hex: String,
    pub(crate) digest: String,
    pub(crate) gen: Mutex<GenState>,
    /// Chunk index (of the current partial) → (flight id, receiver).
    pub(crate) inflight: Mutex<HashMap<u64, (u64, Flight)>>,
    pub(crate) hints: Arc<Hints>,
    /// Serialises verification and promotion.
    pub(crate) finishing: tokio::sync::Mutex<()>,
}

/// Why a fetch was started; decides what happens to a chunk that cannot be stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JobKind {
    /// A read needs it: hand the bytes over anyway.
    Demand,
    /// Read-ahead: give up, nobody needs it yet.
    Ahead,
    /// The whole blob must end up stored: fail.
    Whole,
}

/// A fetch to start: chunks `chunks` of `part`, resolving `senders` as they arrive.
pub(crate) struct FillJob {
    pub(crate) kind: JobKind,
    pub(crate) part: Arc<Partial>,
    pub(crate) chunks: Range<u64>,
    /// Bounds how many fetches of one whole-blob request run at once.
    pub(crate) permits: Option<Arc<tokio::sync::Semaphore>>,
    pub(crate) senders: Vec<(u64, u64, watch::Sender<Option<Outcome>>)>,
}

/// What a read or whole fetch must wait for.
pub(crate) struct Plan {
    /// Everything asked for was present when planned.
    pub(crate) ready: bool,
    pub(crate) waits: Vec<Flight>,
    pub(crate) jobs: Vec<FillJob>,
}

/// How [`Shared::plan`] should treat the asked range.
pub(crate) enum Want {
    /// A read at these bytes; its first plan feeds the read-ahead streams.
    Read(Range<u64>, bool),
    /// Everything: missing runs are fetched whole, no read-ahead.
    Whole,
}

const MAX_STREAMS: usize = 4;

impl BlobState {
    pub(crate) fn new(hex: &str, hints: Arc<Hints>) -> Self {
        BlobState {
            hex: hex.to_string(),
            digest: format!("sha256:{hex}"),
            gen: Mutex::new(GenState {
                loaded: false,
                gen: Gen::Absent,
            }),
            inflight: Mutex::new(HashMap::new()),
            hints,
            finishing: tokio::sync::Mutex::new(()),
        }
    }

    /// The current generation (blocking threads only, see the module comment).
    pub(crate) fn current(&self) -> Gen {
        self.gen.lock().unwrap().gen.clone()
    }

    /// Replaces the generation; flights of the old one no longer gather waiters.
    pub(crate) fn set_gen(&self, g: &mut GenState, gen: Gen) {
        g.gen = gen;
        self.inflight.lock().unwrap().clear();
    }

    /// Resolves one flight and forgets it, unless a newer flight replaced it.
    pub(crate) fn resolve(
        &self,
        chunk: u64,
        id: u64,
        tx: watch::Sender<Option<Outcome>>,
        outcome: Outcome,
    ) {
        {
            let mut m = self.inflight.lock().unwrap();
            if m.get(&chunk).is_some_and(|(i, _)| *i == id) {
                m.remove(&chunk);
            }
        }
        let _ = tx.send(Some(outcome));
    }
}

impl Hints {
    /// Records a read and returns how far to read ahead past its end, in bytes.
    fn advance(&self, read: &Range<u64>, chunk: u64, max: u64) -> u64 {
        let mut streams = self.streams.lock().unwrap();
        if let Some(s) = streams.iter_mut().find(|s| s.next == read.start) {
            s.window = (s.window * 2).clamp(chunk, max.max(chunk));
            s.next = read.end;
            return s.window;
        }
        if streams.len() == MAX_STREAMS {
            streams.remove(0);
        }
        streams.push(Stream {
            next: read.end,
            window: 0,
        });
        0
    }
}

/// Opens the complete blob with a shared lock; `None` when it is not there.
pub(crate) fn open_complete(layout: &Layout, hex: &str) -> io::Result<Option<File>> {
    let path = layout.blob(hex);
    for _ in 0..8 {
        let f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        lock_shared(&f)?;
        if is_at(&f, &path)? {
            // Recency for the next process's scan; best effort.
            let _ = f.set_modified(SystemTime::now());
            return Ok(Some(f));
        }
    }
    Ok(None)
}

/// What is on disk for blob `hex` now.
pub(crate) fn load(layout: &Layout, hex: &str) -> io::Result<Gen> {
    if let Some(f) = open_complete(layout, hex)? {
        return Ok(Gen::Complete(Arc::new(f)));
    }
    Ok(match Partial::open(layout, hex, None)? {
        Some(p) => Gen::Partial(Arc::new(p)),
        None => Gen::Absent,
    })
}

/// Groups sorted chunk indices into runs of at most `max_run` contiguous chunks.
fn runs(chunks: &[u64], max_run: u64) -> Vec<Range<u64>> {
    let mut out: Vec<Range<u64>> = Vec::new();
    for &c in chunks {
        match out.last_mut() {
            Some(r) if r.end == c && r.end - r.start < max_run => r.end += 1,
            _ => out.push(c..c + 1),
        }
    }
    out
}

impl Shared {
    pub(crate) fn state(&self, hex: &str) -> Arc<BlobState> {
        let mut m = self.states.lock().unwrap();
        if let Some(s) = m.get(hex).and_then(|w| w.upgrade()) {
            return s;
        }
        m.retain(|_, w| w.strong_count() > 0);
        let hints = {
            let mut h = self.hints.lock().unwrap();
            match h.get(hex) {
                Some(x) => x.clone(),
                None => {
                    let x = Arc::new(Hints::default());
                    h.push(hex.to_string(), x.clone());
                    x
                }
            }
        };
        let s = Arc::new(BlobState::new(hex, hints));
        m.insert(hex.to_string(), Arc::downgrade(&s));
        s
    }

    /// Opens the blob's files once per state (blocking).
    pub(crate) fn load(&self, state: &BlobState) -> io::Result<()> {
        let mut g = state.gen.lock().unwrap();
        if !g.loaded {
            g.gen = load(&self.layout, &state.hex)?;
            g.loaded = true;
        }
        Ok(())
    }

    /// Opens the partial pair of `hex`, creating or resetting it for `size` (blocking).
    fn create_partial(&self, hex: &str, size: u64) -> io::Result<Gen> {
        let want = Some((size, self.config.chunk_size));
        match Partial::open(&self.layout, hex, want)? {
            Some(p) => Ok(Gen::Partial(Arc::new(p))),
            None => Err(io::Error::other(format!(
                "sha256:{hex}: partial files vanished"
            ))),
        }
    }

    /// Decides what to fetch for `want` and registers the flights (blocking).
    pub(crate) fn plan(&self, state: &BlobState, key: &BlobKey, want: &Want) -> Result<Plan> {
        self.load(state)?;
        let mut g = state.gen.lock().unwrap();
        self.index
            .lock()
            .unwrap()
            .touch(&Key::Blob(state.hex.clone()));
        let mut tries = 0;
        let p = loop {
            match g.gen.clone() {
                Gen::Complete(f) => {
                    let len = f.metadata()?.len();
                    if len != key.size {
                        return Err(Error::invalid(format!(
                            "blob {} has {len} bytes, not the {} its descriptor says",
                            key.digest, key.size
                        )));
                    }
                    return Ok(Plan {
                        ready: true,
                        waits: Vec::new(),
                        jobs: Vec::new(),
                    });
                }
                Gen::Partial(p) if p.size() == key.size && p.linked()? => break p,
                Gen::Partial(p) if p.size() != key.size && tries < 3 => {
                    // A pair started from a wrong size can never verify: start over.
                    tries += 1;
                    p.discard()?;
                    let fresh = self.create_partial(&state.hex, key.size)?;
                    state.set_gen(&mut g, fresh);
                }
                Gen::Absent if tries < 3 => {
                    tries += 1;
                    let gen = match load(&self.layout, &state.hex)? {
                        Gen::Absent => self.create_partial(&state.hex, key.size)?,
                        other => other,
                    };
                    state.set_gen(&mut g, gen);
                }
                Gen::Partial(_) if tries < 3 => {
                    // Promoted or deleted by someone else: see what is there now.
                    tries += 1;
                    let gen = load(&self.layout, &state.hex)?;
                    state.set_gen(&mut g, gen);
                }
                _ => {
                    return Err(Error::other(format!(
                        "blob {}: its cache files keep changing",
                        key.digest
                    )))
                }
            }
        };

        let (need, ahead) = match want {
            Want::Whole => (0..p.size(), 0..0),
            Want::Read(r, first) => {
                let w = if *first {
                    let h = &state.hints;
                    h.advance(r, self.config.chunk_size, self.config.read_ahead_max)
                } else {
                    0
                };
                (r.clone(), r.end..r.end.saturating_add(w))
            }
        };
        let need = p.chunks_of(&need);
        let ahead = p.chunks_of(&ahead);
        p.refresh(need.clone())?;
        p.refresh(ahead.clone())?;

        let mut inflight = state.inflight.lock().unwrap();
        let mut plan = Plan {
            ready: true,
            waits: Vec::new(),
            jobs: Vec::new(),
        };
        let mut missing = Vec::new();
        for c in need {
            if p.is_present(c) {
                continue;
            }
            plan.ready = false;
            match inflight.get(&c) {
                // A closed flight (its task died) is as good as none.
                Some((_, rx)) if rx.has_changed().is_ok() => plan.waits.push(rx.clone()),
                _ => missing.push(c),
            }
        }
        let kind = match want {
            Want::Whole => JobKind::Whole,
            Want::Read(..) => JobKind::Demand,
        };
        let permits = (kind == JobKind::Whole).then(|| Arc::new(tokio::sync::Semaphore::new(4)));
        for run in runs(&missing, u64::MAX) {
            let mut job = self.start(kind, &p, run, &mut inflight, &mut plan.waits);
            job.permits = permits.clone();
            plan.jobs.push(job);
        }
        if state.hints.ranges.load(Ordering::Relaxed) == 1 {
            // Where the window first lacks a chunk, one flight fetches a whole window
            // from there: a sequential reader then costs a request per window, not
            // one per chunk the window's end moves over.
            let free = |c: u64| {
                !p.is_present(c)
                    && inflight
                        .get(&c)
                        .is_none_or(|(_, rx)| rx.has_changed().is_err())
            };
            let max_run = (self.config.read_ahead_max / p.chunk_size()).max(1);
            if let Some(first) = ahead.clone().find(|c| free(*c)) {
                let mut end = first + 1;
                while end < p.chunk_count() && end - first < max_run && free(end) {
                    end += 1;
                }
                plan.jobs.push(self.start(
                    JobKind::Ahead,
                    &p,
                    first..end,
                    &mut inflight,
                    &mut Vec::new(),
                ));
            }
        }
        Ok(plan)
    }

    fn start(
        &self,
        kind: JobKind,
        p: &Arc<Partial>,
        run: Range<u64>,
        inflight: &mut HashMap<u64, (u64, Flight)>,
        waits: &mut Vec<Flight>,
    ) -> FillJob {
        let mut senders = Vec::new();
        for c in run.clone() {
            let id = self.flight_seq.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = watch::channel(None);
            waits.push(rx.clone());
            inflight.insert(c, (id, rx));
            senders.push((c, id, tx));
        }
        FillJob {
            kind,
            part: p.clone(),
            chunks: run,
            permits: None,
            senders,
        }
    }

    /// Copies bytes `range` from the current files or from `passed` chunks (blocking);
    /// `None` when some of it is neither stored nor passed (the caller plans again).
    pub(crate) fn assemble(
        &self,
        state: &BlobState,
        range: &Range<u64>,
        passed: &[(u64, Bytes)],
    ) -> io::Result<Option<Bytes>> {
        let gen = state.current();
        let mut out = vec![0u8; (range.end - range.start) as usize];
        let mut pos = range.start;
        while pos < range.end {
            let at = (pos - range.start) as usize;
            let upto = match &gen {
                Gen::Complete(f) => {
                    f.read_exact_at(&mut out[at..], pos)?;
                    range.end
                }
                Gen::Partial(p) if p.is_present(pos / p.chunk_size()) => {
                    let end = p.chunk_range(pos / p.chunk_size()).end.min(range.end);
                    p.read_at(&mut out[at..(end - range.start) as usize], pos)?;
                    end
                }
                _ => {
                    let Some((s, b)) = passed
                        .iter()
                        .find(|(s, b)| *s <= pos && pos < s + b.len() as u64)
                    else {
                        return Ok(None);
                    };
                    let end = (s + b.len() as u64).min(range.end);
                    out[at..(end - range.start) as usize]
                        .copy_from_slice(&b[(pos - s) as usize..(end - s) as usize]);
                    end
                }
            };
            pos = upto;
        }
        Ok(Some(Bytes::from(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_split_gaps_and_long_stretches() {
        assert_eq!(runs(&[1, 2, 3, 5, 6, 9], u64::MAX), vec![1..4, 5..7, 9..10]);
        assert_eq!(runs(&[0, 1, 2, 3, 4], 2), vec![0..2, 2..4, 4..5]);
        assert!(runs(&[], 3).is_empty());
    }

    #[test]
    fn read_ahead_grows_on_sequential_reads_and_resets_on_jumps() {
        let g = Hints::default();
        let mb = 1 << 20;
        assert_eq!(g.advance(&(0..100), mb, 8 * mb), 0);
        assert_eq!(g.advance(&(100..200), mb, 8 * mb), mb);
        assert_eq!(g.advance(&(200..300), mb, 8 * mb), 2 * mb);
        assert_eq!(g.advance(&(300..400), mb, 8 * mb), 4 * mb);
        assert_eq!(g.advance(&(400..500), mb, 8 * mb), 8 * mb);
        assert_eq!(g.advance(&(500..600), mb, 8 * mb), 8 * mb);
        // A second reader elsewhere starts its own stream; the first keeps its window.
        assert_eq!(g.advance(&(10_000..10_100), mb, 8 * mb), 0);
        assert_eq!(g.advance(&(600..700), mb, 8 * mb), 8 * mb);
    }
}
