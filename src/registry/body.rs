//! Blob bodies that survive a dropped connection: when a body breaks off (a connection
//! reset, a body shorter than its `Content-Length`), the reader asks again with a
//! `Range` from the next byte it has not yet handed out and goes on, so a long copy is
//! not lost to one bad connection. Every byte is handed out once, in order; the caller
//! verifies the whole blob's digest as before.
//!
//! Limits: at most `max(3, --retry-times)` attempts in a row that bring no new byte,
//! and [`MAX_RESUMES`] in all (then the error says which blob, how far it got and
//! why); a registry that answers a
//! resumed request with the whole blob (ignoring `Range`) is read past what was
//! already handed out.

use std::ops::Range;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::stream;
use tokio::io::AsyncRead;

use super::{response, Client};
use crate::error::{Error, Result};

/// Most times one body is asked for again, however much each attempt brought.
pub const MAX_RESUMES: u32 = 32;

/// A blob body opened with [`Client::open_blob`].
pub struct OpenedBlob {
    /// Blob offset of the body's first byte (0 when the registry ignored `Range`).
    pub offset: u64,
    /// Bytes the body will carry, when the registry said.
    pub size: Option<u64>,
    /// Whether the registry honoured `Range`.
    pub partial: bool,
    pub body: Pin<Box<dyn AsyncRead + Send>>,
}

struct Reader {
    client: Client,
    repo: String,
    digest: String,
    resp: Option<reqwest::Response>,
    /// Blob offset of the next byte to hand out.
    pos: u64,
    /// Where the body started (for messages).
    start: u64,
    /// Blob offset the body ends at, when known.
    end: Option<u64>,
    /// Bytes of the current answer to drop (a resumed request answered from 0).
    skip: u64,
    /// Attempts in a row without a new byte.
    fruitless: u32,
    /// Times the body was asked for again.
    resumes: u32,
    progressed: bool,
    done: bool,
}

impl Client {
    /// GETs blob `digest` (bytes `range`, or all of it) as a body that resumes with a
    /// ranged request where a broken connection cut it off. `size`, the blob's size
    /// as its descriptor gives it, bounds the body whatever `Content-Length` says.
    pub async fn open_blob(
        &self,
        repo: &str,
        digest: &str,
        range: Option<Range<u64>>,
        size: Option<u64>,
    ) -> Result<OpenedBlob> {
        let blob_size = size;
        let first = self.get_blob(repo, digest, range.clone()).await?;
        let offset = match (&range, first.partial) {
            (Some(r), true) => r.start,
            _ => 0,
        };
        let size = first.size;
        let partial = first.partial;
        let announced = match (&range, first.partial) {
            (Some(r), true) => Some(r.end),
            _ => size.map(|n| offset + n),
        };
        let end = match (announced, blob_size) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let reader = Reader {
            client: self.clone(),
            repo: repo.to_string(),
            digest: digest.to_string(),
            resp: Some(first.response),
            pos: offset,
            start: offset,
            end,
            skip: 0,
            fruitless: 0,
            resumes: 0,
            progressed: false,
            done: false,
        };
        let s = stream::unfold(reader, |mut r| async move {
            let item = r.next().await?;
            Some((item, r))
        });
        Ok(OpenedBlob {
            offset,
            size,
            partial,
            body: Box::pin(tokio_util::io::StreamReader::new(s)),
        })
    }
}

impl Reader {
    fn max_fruitless(&self) -> u32 {
        self.client.inner.config.retry_times.max(3)
    }

    fn failure(&self, why: &str) -> std::io::Error {
        let got = self.pos - self.start;
        let mut of = match self.end {
            Some(e) => format!("{got} of {} bytes", e - self.start),
            None => format!("{got} bytes"),
        };
        if self.resumes > 0 {
            of.push_str(&format!(" and {} resumed requests", self.resumes));
        }
        std::io::Error::other(format!(
            "reading blob {} of {}/{}: {why} after {of}",
            self.digest,
            self.client.registry(),
            self.repo
        ))
    }

    /// The next piece of the body; `None` at its end.
    async fn next(&mut self) -> Option<std::io::Result<Bytes>> {
        if self.done {
            return None;
        }
        loop {
            let Some(resp) = self.resp.as_mut() else {
                match self.reopen().await {
                    Ok(true) => continue,
                    // Nothing past `pos`: the registry announced more than the blob has.
                    // What arrived is all there is; the caller's digest check decides.
                    Ok(false) => {
                        self.done = true;
                        return None;
                    }
                    Err(e) => {
                        self.fruitless += 1;
                        if self.fruitless > self.max_fruitless() || self.resumes >= MAX_RESUMES {
                            self.done = true;
                            return Some(Err(self.failure(&format!("resuming failed: {e}"))));
                        }
                        self.resumes += 1;
                        self.client.backoff(self.fruitless).await;
                        continue;
                    }
                }
            };
            let why = match resp.chunk().await {
                Ok(Some(mut b)) => {
                    if self.skip > 0 {
                        let n = self.skip.min(b.len() as u64);
                        self.skip -= n;
                        b = b.slice(n as usize..);
                        if b.is_empty() {
                            continue;
                        }
                    }
                    if let Some(end) = self.end {
                        let room = end.saturating_sub(self.pos);
                        if (b.len() as u64) > room {
                            b.truncate(room as usize);
                        }
                    }
                    if b.is_empty() {
                        self.done = true;
                        return None;
                    }
                    self.pos += b.len() as u64;
                    self.progressed = true;
                    return Some(Ok(b));
                }
                Ok(None) => match self.end {
                    Some(e) if self.pos < e => "the body ended early".to_string(),
                    _ => {
                        self.done = true;
                        return None;
                    }
                },
                Err(e) => response::describe_reqwest(&e),
            };
            self.resp = None;
            if self.end.is_some_and(|e| self.pos >= e) {
                // Every byte the blob has arrived; only the announced length was wrong.
                self.done = true;
                return None;
            }
            if self.progressed {
                self.fruitless = 0;
                self.progressed = false;
            }
            self.fruitless += 1;
            if self.fruitless > self.max_fruitless() || self.resumes >= MAX_RESUMES {
                self.done = true;
                return Some(Err(self.failure(&why)));
            }
            tracing::info!(
                "{}; asking again from byte {}",
                self.failure(&why),
                self.pos
            );
            self.resumes += 1;
            if self.fruitless > 1 {
                self.client.backoff(self.fruitless - 1).await;
            }
        }
    }

    /// Asks again from `pos`; `false` when the registry says there is nothing there
    /// (416 Range Not Satisfiable).
    async fn reopen(&mut self) -> Result<bool> {
        let again = match self
            .client
            .get_blob_from(&self.repo, &self.digest, self.pos, self.end)
            .await
        {
            Ok(a) => a,
            Err(e) if e.to_string().contains("416") => return Ok(false),
            Err(e) => return Err(e),
        };
        if again.partial {
            let starts = again
                .response
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(content_range_start);
            if starts.is_some_and(|s| s != self.pos) {
                return Err(Error::Network(format!(
                    "the registry answered from another offset than {}",
                    self.pos
                )));
            }
            self.skip = 0;
        } else {
            self.skip = self.pos;
        }
        self.resp = Some(again.response);
        Ok(true)
    }
}

/// The first byte of `bytes A-B/N`.
fn content_range_start(v: &str) -> Option<u64> {
    v.trim()
        .strip_prefix("bytes ")?
        .split('-')
        .next()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_starts() {
        assert_eq!(content_range_start("bytes 100-199/1000"), Some(100));
        assert_eq!(content_range_start(" bytes 0-0/1"), Some(0));
        assert_eq!(content_range_start("bytes */1000"), None);
        assert_eq!(content_range_start("items 1-2/3"), None);
    }
}
