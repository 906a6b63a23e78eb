//! `copy-to/`: the one writable place. Writing a destination into `copy-to/NAME` and
//! closing the file copies the directory's image there.
//!
//! Protocol:
//! - `copy-to/NAME` holds the request: the destination in scry's transport syntax on
//!   the first non-empty line (`oci:/srv/images:app`, `docker://host/app:1`, …), then
//!   optional flags, whitespace-separated, on further lines (`--format oci`).
//! - Closing the written file (`flush`) starts the copy and waits for it; the close
//!   fails (EIO) when the copy fails. A request without a destination is left pending.
//! - Every write that ends a line checks the request so far, and fails (EIO) when it
//!   is refused: a bad flag, a destination that does not parse or cannot be opened, a
//!   registry that does not answer or refuses to take pushes (the destination is
//!   opened once, not again for each line of flags). The job stays pending: the close
//!   runs the copy, which then fails for the same reason unless later lines mended it. Shells ignore the errors
//!   of `close()` for their builtins, so this is what makes
//!   `echo DEST > copy-to/x && echo ok` tell the truth in all but the failures only the
//!   copy can meet (those still fail the close, and `NAME.status` shows them).
//! - `copy-to/NAME.status` shows the job as JSON: `state` (`pending`, `running`,
//!   `succeeded`, `failed`), `destination`, `bytes_done`, `bytes_total`, `error`,
//!   `source` (the image, pinned to its digest).
//! - `rm copy-to/NAME` (or `NAME.status`) forgets a job; a running one is EBUSY.
//!   Opening a finished job for writing starts a new request under the same name.
//! - Names starting with `.` or ending in `.status` cannot be created.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use bytes::Bytes;
use serde_json::json;
use tokio::sync::watch;

use super::backend::{CopyProgress, CopyRequest, ImageSpec};
use super::error::{FsError, FsErrorKind, FsResult};
use super::inode::Key;
use super::meta::Meta;
use super::node::{LocKind, Locator, Node};
use super::types::FileType;
use super::Fs;
use crate::manifest::to_go_json_indent;
use crate::ErrorKind;

/// Largest request text accepted.
pub(crate) const MAX_REQUEST: usize = 64 * 1024;
pub(crate) const STATUS_SUFFIX: &str = ".status";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Pending => "pending",
            Phase::Running => "running",
            Phase::Succeeded => "succeeded",
            Phase::Failed => "failed",
        }
    }
}

type Outcome = Option<Result<(), String>>;

struct JobState {
    phase: Phase,
    text: Vec<u8>,
    destination: String,
    source: Option<String>,
    error: Option<String>,
    progress: Arc<CopyProgress>,
    modified: SystemTime,
    /// Set while running and after: becomes `Some(result)` when the copy ends.
    done: Option<watch::Receiver<Outcome>>,
    /// The destination [`Job::check`] last found writable.
    checked_destination: Option<String>,
}

/// One copy request and its state.
pub(crate) struct Job {
    pub loc: Arc<Locator>,
    state: Mutex<JobState>,
}

impl Job {
    fn new(loc: Arc<Locator>) -> Job {
        Job {
            loc,
            state: Mutex::new(JobState {
                phase: Phase::Pending,
                text: Vec::new(),
                destination: String::new(),
                source: None,
                error: None,
                progress: Arc::default(),
                modified: SystemTime::now(),
                done: None,
                checked_destination: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, JobState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn phase(&self) -> Phase {
        self.lock().phase
    }

    pub fn text_len(&self) -> u64 {
        self.lock().text.len() as u64
    }

    pub fn modified(&self) -> SystemTime {
        self.lock().modified
    }

    pub fn text(&self) -> Bytes {
        Bytes::copy_from_slice(&self.lock().text)
    }

    pub fn status_json(&self) -> Bytes {
        let st = self.lock();
        let doc = json!({
            "state": st.phase.name(),
            "destination": st.destination,
            "bytes_done": st.progress.bytes_done(),
            "bytes_total": st.progress.bytes_total(),
            "error": st.error,
            "source": st.source,
        });
        Bytes::from(to_go_json_indent(&doc) + "\n")
    }

    fn reset(st: &mut JobState) {
        *st = JobState {
            phase: Phase::Pending,
            text: Vec::new(),
            destination: String::new(),
            source: None,
            error: None,
            progress: Arc::default(),
            modified: SystemTime::now(),
            done: None,
            checked_destination: None,
        };
    }

    /// A writer opens the job: a running job is busy, a finished one starts over.
    pub fn open_for_write(&self, truncate: bool) -> FsResult<()> {
        let mut st = self.lock();
        match st.phase {
            Phase::Running => Err(busy()),
            Phase::Succeeded | Phase::Failed => {
                Job::reset(&mut st);
                Ok(())
            }
            Phase::Pending => {
                if truncate {
                    st.text.clear();
                }
                Ok(())
            }
        }
    }

    pub fn write(&self, offset: u64, data: &[u8]) -> FsResult<u32> {
        let mut st = self.lock();
        if st.phase != Phase::Pending {
            return Err(busy());
        }
        let end = usize::try_from(offset)
            .ok()
            .and_then(|o| o.checked_add(data.len()))
            .filter(|e| *e <= MAX_REQUEST)
            .ok_or_else(|| {
                FsError::new(
                    FsErrorKind::TooBig,
                    format!("a copy-to request is limited to {MAX_REQUEST} bytes"),
                )
            })?;
        let start = end - data.len();
        if st.text.len() < end {
            st.text.resize(end, 0);
        }
        st.text[start..end].copy_from_slice(data);
        st.modified = SystemTime::now();
        Ok(data.len() as u32)
    }

    pub fn truncate(&self, size: u64) -> FsResult<()> {
        let mut st = self.lock();
        match st.phase {
            Phase::Running => return Err(busy()),
            Phase::Succeeded | Phase::Failed if size == 0 => Job::reset(&mut st),
            Phase::Succeeded | Phase::Failed => return Err(busy()),
            Phase::Pending => {}
        }
        let size = usize::try_from(size)
            .ok()
            .filter(|s| *s <= MAX_REQUEST)
            .ok_or_else(|| FsError::new(FsErrorKind::TooBig, "request too large"))?;
        st.text.resize(size, 0);
        st.modified = SystemTime::now();
        Ok(())
    }

    /// Starts the copy if the job is pending with a destination. Returns a receiver
    /// of the outcome when the job is running or has run, `None` when still pending.
    pub fn start(self: &Arc<Self>, meta: &Arc<Meta>) -> Option<watch::Receiver<Outcome>> {
        let mut st = self.lock();
        if st.phase != Phase::Pending {
            return st.done.clone();
        }
        let (destination, options) = request_words(&st.text)?;
        let progress = Arc::new(CopyProgress::default());
        let (tx, rx) = watch::channel(None);
        st.phase = Phase::Running;
        st.destination = destination.clone();
        st.progress = progress.clone();
        st.done = Some(rx.clone());
        st.modified = SystemTime::now();
        drop(st);
        let (job, meta) = (self.clone(), meta.clone());
        tokio::spawn(async move {
            let result = job.run(&meta, destination, options, progress).await;
            {
                let mut st = job.lock();
                st.phase = if result.is_ok() {
                    Phase::Succeeded
                } else {
                    Phase::Failed
                };
                st.error = result.as_ref().err().cloned();
                st.modified = SystemTime::now();
            }
            let _ = tx.send(Some(result));
        });
        Some(rx)
    }

    async fn run(
        &self,
        meta: &Meta,
        destination: String,
        options: Vec<String>,
        progress: Arc<CopyProgress>,
    ) -> Result<(), String> {
        let request = self.request(meta, destination, options).await?;
        self.lock().source = Some(request.source.to_string());
        let what = format!("copying {} to {}", request.source, request.destination);
        meta.backend
            .copy(request, progress)
            .await
            .map_err(|e| format!("{what}: {e}"))
    }

    /// The request for this job's image, pinned to the digest its tag names now.
    async fn request(
        &self,
        meta: &Meta,
        destination: String,
        options: Vec<String>,
    ) -> Result<CopyRequest, String> {
        let entry = meta.resolve(&self.loc).await.map_err(|e| e.to_string())?;
        let source = ImageSpec {
            registry: self.loc.registry.clone(),
            repository: self.loc.repo.clone(),
            digest: entry.digest.clone(),
            tag: match &self.loc.kind {
                LocKind::Tag(t) => Some(t.clone()),
                _ => None,
            },
        };
        Ok(CopyRequest {
            source,
            destination,
            options,
        })
    }

    /// Checks the request written so far (see [`super::Backend::check_copy`]): its
    /// destination is opened only when it has not yet been found writable, so lines of
    /// further flags cost no round trip. A refused request fails the caller's write,
    /// and `NAME.status` says why; the job stays pending, since a later line may still
    /// mend it (`--dest-tls-verify=false`), and the close runs the copy either way.
    pub async fn check(&self, meta: &Meta) -> FsResult<()> {
        let (destination, options, open) = {
            let st = self.lock();
            if st.phase != Phase::Pending {
                return Ok(());
            }
            let Some((d, o)) = request_words(&st.text) else {
                return Ok(());
            };
            let open = st.checked_destination.as_deref() != Some(d.as_str());
            (d, o, open)
        };
        let what = format!("copy-to destination {destination}");
        // A request that does not parse is EINVAL, refused credentials EACCES, any other
        // failure (the destination cannot be reached or written) EIO.
        let verdict = match self.request(meta, destination.clone(), options).await {
            Ok(request) => meta.backend.check_copy(&request, open).await.map_err(|e| {
                let kind = match e.kind() {
                    ErrorKind::InvalidInput | ErrorKind::Unsupported => FsErrorKind::Invalid,
                    ErrorKind::Unauthorized => FsErrorKind::Access,
                    _ => FsErrorKind::Io,
                };
                FsError::new(kind, format!("{what}: {e}"))
            }),
            Err(e) => Err(FsError::io(format!("{what}: {e}"))),
        };
        let mut st = self.lock();
        if st.phase != Phase::Pending {
            return Ok(());
        }
        st.destination = destination.clone();
        match verdict {
            Ok(()) => {
                st.error = None;
                if open {
                    st.checked_destination = Some(destination);
                }
                Ok(())
            }
            Err(e) => {
                st.error = Some(e.message().to_string());
                st.checked_destination = None;
                Err(e)
            }
        }
    }
}

/// The destination (first word) and the flags (every later word, on its line or the
/// following ones) of a request text; `None` while it names no destination.
fn request_words(text: &[u8]) -> Option<(String, Vec<String>)> {
    let text = String::from_utf8_lossy(text);
    let mut words = text.split_whitespace().map(str::to_string);
    let destination = words.next()?;
    Some((destination, words.collect()))
}

/// Waits for the outcome of a started job.
pub(crate) async fn wait(mut rx: watch::Receiver<Outcome>) -> FsResult<()> {
    let outcome = match rx.wait_for(Option::is_some).await {
        Ok(v) => v.clone(),
        Err(_) => Some(Err("the copy task ended without a result".into())),
    };
    match outcome {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err(FsError::io(e)),
        None => Err(FsError::io("the copy task ended without a result")),
    }
}

fn busy() -> FsError {
    FsError::new(FsErrorKind::Busy, "the copy job is running")
}

/// The jobs of every `copy-to/` directory, by the directory's inode.
#[derive(Default)]
pub(crate) struct Jobs {
    dirs: Mutex<HashMap<u64, BTreeMap<String, Arc<Job>>>>,
}

impl Jobs {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, BTreeMap<String, Arc<Job>>>> {
        self.dirs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, dir: u64, name: &str) -> Option<Arc<Job>> {
        self.lock().get(&dir).and_then(|d| d.get(name)).cloned()
    }

    pub fn count(&self) -> usize {
        self.lock().values().map(BTreeMap::len).sum()
    }
}

fn valid_job_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255 - STATUS_SUFFIX.len()
        && !name.starts_with('.')
        && !name.ends_with(STATUS_SUFFIX)
        && !name.contains(['/', '\0'])
}

impl Fs {
    pub(crate) fn lookup_job(&self, dir: u64, name: &str) -> FsResult<(Key, Node)> {
        let key = Key::Child(dir, name.to_string());
        if let Some(job) = self.jobs.get(dir, name) {
            return Ok((key, Node::Job(job)));
        }
        if let Some(job) = name
            .strip_suffix(STATUS_SUFFIX)
            .and_then(|n| self.jobs.get(dir, n))
        {
            return Ok((key, Node::JobStatus(job)));
        }
        Err(FsError::not_found(format!("copy-to/{name}: no such job")))
    }

    pub(crate) fn list_jobs(&self, dir: u64) -> Vec<(String, Key, FileType)> {
        let names: Vec<String> = self
            .jobs
            .lock()
            .get(&dir)
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default();
        let mut out = Vec::new();
        for n in names {
            let status = format!("{n}{STATUS_SUFFIX}");
            out.push((n.clone(), Key::Child(dir, n), FileType::RegularFile));
            out.push((
                status.clone(),
                Key::Child(dir, status),
                FileType::RegularFile,
            ));
        }
        out
    }

    pub(crate) fn create_job(
        &self,
        dir: u64,
        loc: &Arc<Locator>,
        name: &str,
    ) -> FsResult<(Key, Arc<Job>)> {
        if !valid_job_name(name) {
            return Err(FsError::new(
                FsErrorKind::Invalid,
                format!(
                    "copy-to/{name}: job names must not start with '.' or end in {STATUS_SUFFIX}"
                ),
            ));
        }
        let mut dirs = self.jobs.lock();
        let jobs = dirs.entry(dir).or_default();
        if jobs.contains_key(name) {
            return Err(FsError::new(
                FsErrorKind::Exists,
                format!("copy-to/{name} exists"),
            ));
        }
        let job = Arc::new(Job::new(loc.clone()));
        jobs.insert(name.to_string(), job.clone());
        Ok((Key::Child(dir, name.to_string()), job))
    }

    pub(crate) fn unlink_job(&self, dir: u64, name: &str) -> FsResult<()> {
        // Job names never end in the suffix, so `NAME.status` always means job NAME.
        let base = name.strip_suffix(STATUS_SUFFIX).unwrap_or(name);
        let mut dirs = self.jobs.lock();
        let jobs = dirs.entry(dir).or_default();
        let Some(job) = jobs.get(base) else {
            return Err(FsError::not_found(format!("copy-to/{name}: no such job")));
        };
        if job.phase() == Phase::Running {
            return Err(busy());
        }
        jobs.remove(base);
        drop(dirs);
        self.inodes.unkey(&Key::Child(dir, base.to_string()));
        self.inodes
            .unkey(&Key::Child(dir, format!("{base}{STATUS_SUFFIX}")));
        Ok(())
    }
}
