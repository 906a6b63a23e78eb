//! Digest-checking streams. Every blob read from a source passes through a
//! [`VerifyingReader`]: it hashes while bytes flow and fails at the end — before the
//! reader reports end of stream — if the bytes do not match the expected digest or size,
//! so a destination never commits unverified bytes.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, ReadBuf};

use crate::error::Error;

/// The outcome of a stream: its digest and length, known once it ended.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    inner: Arc<Mutex<Option<(String, u64)>>>,
}

impl Tally {
    /// `(digest, size)` once the stream reached its end, `None` before.
    pub fn get(&self) -> Option<(String, u64)> {
        self.inner.lock().unwrap().clone()
    }
}

/// Hashes bytes as they are read; checks them against `expected` at the end when given.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Sha256,
    read: u64,
    expected_digest: Option<String>,
    expected_size: Option<u64>,
    what: String,
    tally: Tally,
    done: bool,
}

impl<R: AsyncRead + Unpin> VerifyingReader<R> {
    /// Checks the stream against `digest` (a `sha256:` digest) and, when given, `size`.
    /// `what` names the blob in errors.
    pub fn new(inner: R, digest: &str, size: Option<u64>, what: impl Into<String>) -> Self {
        VerifyingReader {
            inner,
            hasher: Sha256::new(),
            read: 0,
            expected_digest: Some(digest.to_string()),
            expected_size: size,
            what: what.into(),
            tally: Tally::default(),
            done: false,
        }
    }

    /// Only computes the digest and length (for bytes scry produced itself).
    pub fn digesting(inner: R) -> Self {
        VerifyingReader {
            inner,
            hasher: Sha256::new(),
            read: 0,
            expected_digest: None,
            expected_size: None,
            what: String::new(),
            tally: Tally::default(),
            done: false,
        }
    }

    /// Where the digest and length appear once the stream ended.
    pub fn tally(&self) -> Tally {
        self.tally.clone()
    }

    fn finish(&mut self) -> io::Result<()> {
        let digest = format!("sha256:{}", hex::encode(self.hasher.clone().finalize()));
        if let Some(size) = self.expected_size {
            if size != self.read {
                return Err(Error::DigestMismatch {
                    what: self.what.clone(),
                    expected: format!("{size} bytes"),
                    actual: format!("{} bytes", self.read),
                }
                .into_io());
            }
        }
        if let Some(exp) = &self.expected_digest {
            if exp.starts_with("sha256:") && *exp != digest {
                return Err(Error::DigestMismatch {
                    what: self.what.clone(),
                    expected: exp.clone(),
                    actual: digest,
                }
                .into_io());
            }
        }
        *self.tally.inner.lock().unwrap() = Some((digest, self.read));
        Ok(())
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for VerifyingReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let new = &buf.filled()[before..];
                if new.is_empty() {
                    this.done = true;
                    return Poll::Ready(this.finish());
                }
                this.hasher.update(new);
                this.read += new.len() as u64;
                if let Some(size) = this.expected_size {
                    if this.read > size {
                        // An error must not come with bytes: take them back.
                        buf.set_filled(before);
                        return Poll::Ready(Err(Error::DigestMismatch {
                            what: this.what.clone(),
                            expected: format!("{size} bytes"),
                            actual: "more".into(),
                        }
                        .into_io()));
                    }
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

/// Whether an algorithm other than sha256 is named (those are passed through unchecked
/// by [`VerifyingReader`] and refused by callers that need a check).
pub fn is_sha256(digest: &str) -> bool {
    digest.starts_with("sha256:") && digest.len() == 71
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn sha(b: &[u8]) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(b)))
    }

    #[tokio::test]
    async fn passes_matching_bytes_and_tallies() {
        let data = b"hello world".repeat(1000);
        let mut r = VerifyingReader::new(&data[..], &sha(&data), Some(data.len() as u64), "blob x");
        let tally = r.tally();
        let mut out = Vec::new();
        r.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, data);
        assert_eq!(tally.get(), Some((sha(&data), data.len() as u64)));
    }

    #[tokio::test]
    async fn fails_on_wrong_digest_before_eof() {
        let data = b"hello";
        let mut r = VerifyingReader::new(&data[..], &sha(b"other"), None, "blob y");
        let mut out = Vec::new();
        let e = r.read_to_end(&mut out).await.unwrap_err();
        assert!(e.to_string().contains("digest mismatch for blob y"), "{e}");
        assert_eq!(Error::from(e).kind(), crate::ErrorKind::DigestMismatch);
        assert_eq!(r.tally().get(), None);
    }

    #[tokio::test]
    async fn fails_on_wrong_size() {
        let data = b"hello";
        let mut r = VerifyingReader::new(&data[..], &sha(data), Some(4), "blob z");
        let mut out = Vec::new();
        let e = r.read_to_end(&mut out).await.unwrap_err();
        assert!(e.to_string().contains("expected 4 bytes, got more"), "{e}");
        let mut r = VerifyingReader::new(&data[..], &sha(data), Some(6), "blob z");
        let e = r.read_to_end(&mut Vec::new()).await.unwrap_err();
        assert!(
            e.to_string().contains("expected 6 bytes, got 5 bytes"),
            "{e}"
        );
    }
}
