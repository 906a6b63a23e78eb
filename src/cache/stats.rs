//! Counters that outlive a process. A process that records them (a mount does) adds
//! what it counted since its last record to `DIR/stats.json` every few seconds and when
//! it ends, under an exclusive lock on `DIR/stats.lock`, and notes its byte budget
//! there. `scry cache status` reads the file: hits, misses and bytes fetched of every
//! mount that used the directory, and the budget the last of them used.

use std::fs::{self, OpenOptions};
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::layout::Layout;
use super::lock::lock_exclusive;
use super::Shared;

/// Counters of one process, or of all that recorded theirs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Counters {
    pub hits: u64,
    pub misses: u64,
    pub bytes_fetched: u64,
}

impl Counters {
    fn minus(self, o: Counters) -> Counters {
        Counters {
            hits: self.hits.saturating_sub(o.hits),
            misses: self.misses.saturating_sub(o.misses),
            bytes_fetched: self.bytes_fetched.saturating_sub(o.bytes_fetched),
        }
    }

    fn plus(self, o: Counters) -> Counters {
        Counters {
            hits: self.hits.saturating_add(o.hits),
            misses: self.misses.saturating_add(o.misses),
            bytes_fetched: self.bytes_fetched.saturating_add(o.bytes_fetched),
        }
    }
}

/// The content of `DIR/stats.json`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Recorded {
    #[serde(flatten)]
    pub counters: Counters,
    /// The budget of the process that recorded last.
    #[serde(default)]
    pub max_bytes: Option<u64>,
}

/// What `DIR/stats.json` says; nothing when it is missing or unreadable.
pub(crate) fn read(layout: &Layout) -> Recorded {
    fs::read(layout.root().join("stats.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Adds `delta` to `DIR/stats.json` and notes `max_bytes`, under the stats lock.
fn add(layout: &Layout, delta: Counters, max_bytes: u64) -> io::Result<()> {
    let root = layout.root();
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.join("stats.lock"))?;
    lock_exclusive(&lock)?;
    let old = read(layout);
    let new = Recorded {
        counters: old.counters.plus(delta),
        max_bytes: Some(max_bytes),
    };
    // In tmp/, where a file left by a crash is cleaned up like any other.
    let tmp = layout
        .tmp_dir()
        .join(format!("stats-{}.json", std::process::id()));
    let text = serde_json::to_vec_pretty(&new).map_err(io::Error::other)?;
    fs::write(&tmp, text)?;
    fs::rename(&tmp, root.join("stats.json"))
}

impl Shared {
    /// This process's counters now.
    pub(crate) fn counters(&self) -> Counters {
        Counters {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            bytes_fetched: self.bytes_fetched.load(Ordering::Relaxed),
        }
    }

    /// Counters not yet added to `DIR/stats.json`.
    pub(crate) fn unrecorded(&self) -> Counters {
        let saved = *self.recorded.lock().unwrap();
        self.counters().minus(saved)
    }

    /// Adds what this process counted since its last record to `DIR/stats.json`
    /// (`force`: also when nothing changed, to note the budget).
    pub(crate) fn record(&self, force: bool) -> io::Result<()> {
        let mut saved = self.recorded.lock().unwrap();
        let now = self.counters();
        let delta = now.minus(*saved);
        if !force && delta == Counters::default() {
            return Ok(());
        }
        add(&self.layout, delta, self.config.max_bytes)?;
        *saved = now;
        Ok(())
    }
}

/// Records `shared`'s counters every `every` until it is dropped.
pub(crate) fn start_recorder(shared: &Arc<Shared>, every: Duration) {
    let weak = Arc::downgrade(shared);
    let spawned = std::thread::Builder::new()
        .name("scry-cache-stats".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            let Some(sh) = weak.upgrade() else { return };
            if let Err(e) = sh.record(false) {
                tracing::warn!(
                    "cache: recording counters in {}: {e}",
                    sh.layout.root().display()
                );
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cache: counters will be recorded only at the end: {e}");
    }
}
