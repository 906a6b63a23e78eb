//! Streaming layer (re)compression. The source stream passes through its verifier first;
//! a decoder may stop at the end of its compressed data before the verifier has seen the
//! end of the stream, so [`Recode`] drains the verified input to its end before it
//! reports end of output — a digest mismatch still fails the copy.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_compression::tokio::bufread::{GzipDecoder, GzipEncoder, ZstdDecoder, ZstdEncoder};
use async_compression::Level;
use tokio::io::{AsyncBufRead, AsyncRead, BufReader, ReadBuf};

use crate::manifest::media_types::Compression;
use crate::transport::BlobStream;

/// Buffer size between stages.
pub(super) const BUF: usize = 256 * 1024;

/// The compression a layer's first bytes show.
pub fn sniff(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Peeks at the start of `input`: its actual compression, and the stream (nothing lost).
pub async fn detect(input: BlobStream) -> io::Result<(Compression, BufReader<BlobStream>)> {
    use tokio::io::AsyncBufReadExt;
    let mut r = BufReader::with_capacity(BUF, input);
    let c = sniff(r.fill_buf().await?);
    Ok((c, r))
}

/// Re-encodes `input` (compressed as `from`) as `to`, at `level` when given.
pub fn recode(
    input: BufReader<BlobStream>,
    from: Compression,
    to: Compression,
    level: Option<i32>,
) -> BlobStream {
    if from == to {
        return Box::pin(input);
    }
    let lvl = level.map(Level::Precise).unwrap_or(Level::Default);
    let source = input;
    let decoded: Pin<Box<dyn AsyncBufRead + Send>> = match from {
        Compression::None => Box::pin(source),
        Compression::Gzip => {
            let mut d = GzipDecoder::new(source);
            d.multiple_members(true);
            Box::pin(BufReader::with_capacity(BUF, Drain::new(d)))
        }
        Compression::Zstd => {
            let mut d = ZstdDecoder::new(source);
            d.multiple_members(true);
            Box::pin(BufReader::with_capacity(BUF, Drain::new(d)))
        }
    };
    match to {
        Compression::None => Box::pin(decoded),
        Compression::Gzip => Box::pin(GzipEncoder::with_quality(decoded, lvl)),
        Compression::Zstd => Box::pin(ZstdEncoder::with_quality(decoded, lvl)),
    }
}

/// Access to the reader a decoder reads from.
trait Inner {
    fn inner(self: Pin<&mut Self>) -> Pin<&mut BufReader<BlobStream>>;
}

impl Inner for GzipDecoder<BufReader<BlobStream>> {
    fn inner(self: Pin<&mut Self>) -> Pin<&mut BufReader<BlobStream>> {
        self.get_pin_mut()
    }
}

impl Inner for ZstdDecoder<BufReader<BlobStream>> {
    fn inner(self: Pin<&mut Self>) -> Pin<&mut BufReader<BlobStream>> {
        self.get_pin_mut()
    }
}

/// A decoder whose end of output waits for the end of its input.
struct Drain<D> {
    decoder: Pin<Box<D>>,
    output_done: bool,
}

impl<D> Drain<D> {
    fn new(decoder: D) -> Self {
        Drain {
            decoder: Box::pin(decoder),
            output_done: false,
        }
    }
}

impl<D: AsyncRead + Inner + Send> AsyncRead for Drain<D> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.output_done {
            let before = buf.filled().len();
            match this.decoder.as_mut().poll_read(cx, buf) {
                Poll::Ready(Ok(())) if buf.filled().len() == before => this.output_done = true,
                other => return other,
            }
        }
        // Output ended: read what is left of the input so its verifier runs.
        let mut scratch = [0u8; 8192];
        loop {
            let mut rb = ReadBuf::new(&mut scratch);
            match this.decoder.as_mut().inner().poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) if rb.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => {
                    if rb.filled().iter().any(|b| *b != 0) {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "unexpected data after the end of the compressed layer",
                        )));
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::VerifyingReader;
    use tokio::io::AsyncReadExt;

    fn gz(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn buffered(v: Vec<u8>) -> BufReader<BlobStream> {
        BufReader::new(Box::pin(std::io::Cursor::new(v)))
    }

    #[tokio::test]
    async fn detects_compression_without_losing_bytes() {
        let (c, r) = detect(Box::pin(std::io::Cursor::new(gz(b"abc"))))
            .await
            .unwrap();
        assert_eq!(c, Compression::Gzip);
        let out = read_all(recode(r, c, Compression::None, None))
            .await
            .unwrap();
        assert_eq!(out, b"abc");
        let (c, r) = detect(Box::pin(std::io::Cursor::new(b"plain tar".to_vec())))
            .await
            .unwrap();
        assert_eq!(c, Compression::None);
        assert_eq!(read_all(Box::pin(r)).await.unwrap(), b"plain tar");
    }

    async fn read_all(s: BlobStream) -> io::Result<Vec<u8>> {
        let mut s = s;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        Ok(out)
    }

    #[tokio::test]
    async fn gzip_to_zstd_and_back() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let z = read_all(recode(
            buffered(gz(&data)),
            Compression::Gzip,
            Compression::Zstd,
            Some(3),
        ))
        .await
        .unwrap();
        assert_eq!(&z[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        let back = read_all(recode(
            buffered(z),
            Compression::Zstd,
            Compression::None,
            None,
        ))
        .await
        .unwrap();
        assert_eq!(back, data);
    }

    #[tokio::test]
    async fn verifier_still_fails_behind_a_decoder() {
        let data = b"layer contents".repeat(100);
        let blob = gz(&data);
        let wrong = format!("sha256:{}", "0".repeat(64));
        let v = VerifyingReader::new(std::io::Cursor::new(blob), &wrong, None, "blob q");
        let e = read_all(recode(
            BufReader::new(Box::pin(v)),
            Compression::Gzip,
            Compression::None,
            None,
        ))
        .await
        .unwrap_err();
        assert!(e.to_string().contains("digest mismatch"), "{e}");
    }
}
