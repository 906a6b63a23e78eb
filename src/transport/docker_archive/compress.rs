//! Compression of whole archives and of single layers inside them: detection by magic
//! bytes (as containers/image), and decoders — blocking ones for opening an archive,
//! async ones for blob streams.
//!
//! gzip and zstd are decoded (several concatenated members or frames included); bzip2
//! and xz are recognised and refused.

use std::io::{self, Read};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use async_compression::tokio::bufread::{GzipDecoder, ZstdDecoder};
use tokio::io::{AsyncRead, BufReader, ReadBuf};

use crate::error::{Error, Result};
use crate::transport::BlobStream;

/// How bytes are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Bzip2,
    Xz,
}

impl Compression {
    /// Recognises the format from the first bytes (at least 6 wanted; fewer means
    /// a short stream, which is then "not compressed").
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b, 0x08]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if head.starts_with(b"BZh") {
            Compression::Bzip2
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else {
            Compression::None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
        }
    }

    /// Fails for the formats scry recognises but cannot decode.
    pub fn check_supported(self, what: &str) -> Result<()> {
        match self {
            Compression::Bzip2 | Compression::Xz => Err(Error::Unsupported(format!(
                "{what} is {}-compressed, which scry cannot decompress (gzip and zstd only)",
                self.name()
            ))),
            _ => Ok(()),
        }
    }
}

/// Reads up to `n` bytes from the start of `r` (fewer only at end of input).
pub fn read_head(r: &mut impl Read, n: usize) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(n);
    r.take(n as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// A blocking decoder for `c` over `r`. `Compression::None` passes bytes through.
pub fn blocking_decoder<'a>(
    c: Compression,
    r: impl Read + Send + Unpin + 'a,
) -> Result<Box<dyn Read + Send + 'a>> {
    c.check_supported("the data")?;
    Ok(match c {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Compression::Zstd => {
            let mut d = ZstdDecoder::new(BufReader::new(ReadyReader(r)));
            d.multiple_members(true);
            Box::new(PollOnce(d))
        }
        _ => Box::new(r),
    })
}

/// An async decoder for `c` over `stream`. `Compression::None` passes bytes through.
pub fn async_decoder(c: Compression, stream: BlobStream) -> Result<BlobStream> {
    c.check_supported("the layer")?;
    Ok(match c {
        Compression::Gzip => {
            let mut d = GzipDecoder::new(BufReader::new(stream));
            d.multiple_members(true);
            Box::pin(d)
        }
        Compression::Zstd => {
            let mut d = ZstdDecoder::new(BufReader::new(stream));
            d.multiple_members(true);
            Box::pin(d)
        }
        _ => stream,
    })
}

/// A blocking reader seen as an async one that is always ready: each poll performs the
/// blocking read. Only [`PollOnce`] drives it, outside any async runtime's workers.
struct ReadyReader<R>(R);

impl<R: Read + Unpin> AsyncRead for ReadyReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.0.read(buf.initialize_unfilled())?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

/// Drives an async reader whose input never waits (a decoder over [`ReadyReader`]) from
/// blocking code: one poll per read, which completes because nothing below can pend.
struct PollOnce<D>(D);

impl<D: AsyncRead + Unpin> Read for PollOnce<D> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut buf = ReadBuf::new(out);
        match Pin::new(&mut self.0).poll_read(&mut cx, &mut buf) {
            Poll::Ready(Ok(())) => Ok(buf.filled().len()),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Err(io::Error::other(
                "decompressor stalled on input that is always ready",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn detects_formats_by_magic() {
        assert_eq!(Compression::detect(&gzip(b"x")), Compression::Gzip);
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd, 0, 0]),
            Compression::Zstd
        );
        assert_eq!(Compression::detect(b"BZh91AY"), Compression::Bzip2);
        assert_eq!(
            Compression::detect(&[0xfd, b'7', b'z', b'X', b'Z', 0]),
            Compression::Xz
        );
        assert_eq!(Compression::detect(b"ustar"), Compression::None);
        assert_eq!(Compression::detect(b""), Compression::None);
        assert!(Compression::Xz.check_supported("x").is_err());
        assert!(Compression::Zstd.check_supported("x").is_ok());
    }

    #[tokio::test]
    async fn blocking_and_async_decoders_agree() {
        let data = b"layer bytes ".repeat(50_000);
        let mut members = gzip(&data[..1000]);
        members.extend(gzip(&data[1000..]));
        let zst = super::super::testutil::zstd(&data).await;
        for (c, packed) in [(Compression::Gzip, members), (Compression::Zstd, zst)] {
            let mut out = Vec::new();
            blocking_decoder(c, &packed[..])
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, data, "{c:?} blocking");
            let mut out = Vec::new();
            let s: BlobStream = Box::pin(std::io::Cursor::new(packed));
            async_decoder(c, s)
                .unwrap()
                .read_to_end(&mut out)
                .await
                .unwrap();
            assert_eq!(out, data, "{c:?} async");
        }
        let mut out = Vec::new();
        let e = blocking_decoder(Compression::Zstd, &b"\x28\xb5\x2f\xfdgarbage"[..])
            .unwrap()
            .read_to_end(&mut out)
            .unwrap_err();
        assert!(!e.to_string().is_empty());
    }
}
