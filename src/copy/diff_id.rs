//! Computing a layer's diff ID (the digest of its uncompressed tar) while the layer
//! streams to its destination, for conversions that must fill in `rootfs.diff_ids`
//! (Docker schema 1 sources). The compressed bytes pass through unchanged; a copy of
//! them is inflated on the side and hashed. The result exists only once the stream
//! was read to its end without error.

use std::io::{self, Write};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, ReadBuf};

use crate::error::{Error, Result};
use crate::manifest::media_types::Compression;

/// Where a diff ID appears once its layer was read to the end.
#[derive(Clone, Debug, Default)]
pub struct DiffIdSlot(Arc<Mutex<Option<String>>>);

impl DiffIdSlot {
    pub fn get(&self) -> Option<String> {
        self.0.lock().unwrap().clone()
    }
}

/// Where the uncompressed bytes go: `Sha256` is itself an `io::Write`.
enum Inflater {
    Plain(Sha256),
    Gzip(Box<flate2::write::MultiGzDecoder<Sha256>>),
}

/// Passes `inner` through and hashes its uncompressed content into a [`DiffIdSlot`].
pub struct DiffIdReader<R> {
    inner: R,
    inflater: Option<Inflater>,
    slot: DiffIdSlot,
}

impl<R> DiffIdReader<R> {
    /// `compression` is the stream's actual compression (sniffed from its first bytes).
    pub fn new(inner: R, compression: Compression, slot: DiffIdSlot) -> Result<Self> {
        let hasher = Sha256::new();
        let inflater = match compression {
            Compression::None => Inflater::Plain(hasher),
            Compression::Gzip => {
                Inflater::Gzip(Box::new(flate2::write::MultiGzDecoder::new(hasher)))
            }
            Compression::Zstd => {
                return Err(Error::Unsupported(
                    "computing the diff ID of a zstd-compressed layer while converting it".into(),
                ))
            }
        };
        Ok(DiffIdReader {
            inner,
            inflater: Some(inflater),
            slot,
        })
    }
}

fn corrupt(e: io::Error) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("decompressing layer to compute its diff ID: {e}"),
    )
}

impl<R: AsyncRead + Unpin> AsyncRead for DiffIdReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let new = &buf.filled()[before..];
                let Some(inflater) = this.inflater.as_mut() else {
                    return Poll::Ready(Ok(()));
                };
                if new.is_empty() {
                    let hasher = match this.inflater.take() {
                        Some(Inflater::Plain(h)) => h,
                        Some(Inflater::Gzip(d)) => match d.finish() {
                            Ok(h) => h,
                            Err(e) => return Poll::Ready(Err(corrupt(e))),
                        },
                        None => return Poll::Ready(Ok(())),
                    };
                    let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
                    *this.slot.0.lock().unwrap() = Some(digest);
                    return Poll::Ready(Ok(()));
                }
                let written = match inflater {
                    Inflater::Plain(h) => h.write_all(new),
                    Inflater::Gzip(d) => d.write_all(new),
                };
                if let Err(e) = written {
                    buf.set_filled(before);
                    return Poll::Ready(Err(corrupt(e)));
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    async fn run(bytes: Vec<u8>, c: Compression) -> (io::Result<Vec<u8>>, Option<String>) {
        let slot = DiffIdSlot::default();
        let mut r = DiffIdReader::new(std::io::Cursor::new(bytes), c, slot.clone()).unwrap();
        let mut out = Vec::new();
        let res = r.read_to_end(&mut out).await.map(|_| out);
        (res, slot.get())
    }

    #[tokio::test]
    async fn hashes_the_uncompressed_content_and_passes_bytes_through() {
        let data = b"layer contents ".repeat(5000);
        let want = crate::manifest::sha256_digest(&data);
        let gz = gzip(&data);
        let (out, id) = run(gz.clone(), Compression::Gzip).await;
        assert!(out.unwrap() == gz);
        assert_eq!(id.as_deref(), Some(want.as_str()));
        let (out, id) = run(data.clone(), Compression::None).await;
        assert!(out.unwrap() == data);
        assert_eq!(id.as_deref(), Some(want.as_str()));
    }

    #[tokio::test]
    async fn corrupt_gzip_fails_and_leaves_no_diff_id() {
        let mut gz = gzip(&b"abc".repeat(1000));
        let n = gz.len();
        gz.truncate(n - 12);
        let (out, id) = run(gz, Compression::Gzip).await;
        assert!(out.is_err());
        assert!(id.is_none());
        assert!(DiffIdReader::new(
            std::io::Cursor::new(Vec::<u8>::new()),
            Compression::Zstd,
            DiffIdSlot::default()
        )
        .is_err());
    }
}
