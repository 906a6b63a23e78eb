//! Reading a layer's tar stream at any offset through its index, from a source of
//! blob byte ranges (the mount's blob cache): plain tar by offset, gzip from the
//! nearest checkpoint, zstd from the start (a frame can only be entered at its start).

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

use super::gzip;
use super::index::{Entry, LayerIndex};
use super::tar::show;
use crate::manifest::media_types::Compression;

/// Bytes of a blob by range, from wherever they live.
pub trait RangeSource {
    /// The blob's size.
    fn size(&self) -> u64;
    /// Exactly `len` bytes at `offset` (`offset + len <= size`).
    fn read_range(&self, offset: u64, len: usize) -> io::Result<Vec<u8>>;
}

/// Compressed bytes asked for at a time: reads from a checkpoint take what they
/// need plus at most this much.
pub const CHUNK: usize = 256 * 1024;

/// A [`RangeSource`] read in order from an offset, [`CHUNK`] bytes at a time (the
/// first request may be larger: see [`RangeReader::first`]).
pub struct RangeReader<'a, S: ?Sized> {
    src: &'a S,
    pos: u64,
    buf: Vec<u8>,
    at: usize,
    first: Option<u64>,
}

impl<'a, S: RangeSource + ?Sized> RangeReader<'a, S> {
    pub fn new(src: &'a S, pos: u64) -> Self {
        RangeReader {
            src,
            pos,
            buf: Vec::new(),
            at: 0,
            first: None,
        }
    }

    /// Asks for `len` bytes in the first request: a read whose extent is known costs
    /// one request to the source (and looks like one random read, not a sequential
    /// stream worth reading ahead of).
    pub fn first(mut self, len: u64) -> Self {
        self.first = Some(len);
        self
    }
}

impl<S: RangeSource + ?Sized> Read for RangeReader<'_, S> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.at == self.buf.len() {
            let left = self.src.size().saturating_sub(self.pos);
            if left == 0 {
                return Ok(0);
            }
            let want = self.first.take().unwrap_or(CHUNK as u64).max(1);
            let n = left.min(want) as usize;
            self.buf = self.src.read_range(self.pos, n)?;
            if self.buf.len() != n {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "asked for {n} bytes at {}, got {}",
                        self.pos,
                        self.buf.len()
                    ),
                ));
            }
            self.pos += n as u64;
            self.at = 0;
        }
        let n = out.len().min(self.buf.len() - self.at);
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// `len` bytes at offset `at` of the tar stream of the layer `index` describes
/// (fewer at its end).
pub fn read_tar(
    index: &LayerIndex,
    src: &(impl RangeSource + ?Sized),
    at: u64,
    len: usize,
) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(len.min(CHUNK * 64));
    stream_tar(index, src, at, len as u64, |b| {
        out.extend_from_slice(b);
        Ok(())
    })?;
    Ok(out)
}

/// Like [`read_tar`], handing the bytes to `sink` piece by piece.
pub fn stream_tar(
    index: &LayerIndex,
    src: &(impl RangeSource + ?Sized),
    at: u64,
    len: u64,
    mut sink: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<u64> {
    let len = len.min(index.tar_size.saturating_sub(at));
    if len == 0 {
        return Ok(0);
    }
    match index.compression {
        Compression::None => {
            let mut done = 0;
            while done < len {
                let n = (len - done).min(CHUNK as u64 * 16) as usize;
                sink(&src.read_range(at + done, n)?)?;
                done += n as u64;
            }
            Ok(done)
        }
        Compression::Gzip => {
            let cp = gzip::checkpoint_for(&index.checkpoints, at)
                .ok_or_else(|| io::Error::other("gzip layer index without checkpoints"))?;
            let reader = bounded(index, src, cp, at + len);
            gzip::stream_at(reader, cp, at, len, sink)
        }
        Compression::Zstd => {
            // From the last frame start before `at` (the stream's start in indexes
            // that record none).
            let start = gzip::checkpoint_for(&index.checkpoints, at);
            let reader = match start {
                Some(cp) => bounded(index, src, cp, at + len),
                None => RangeReader::new(src, 0),
            };
            let skip = at - start.map_or(0, |cp| cp.out);
            let mut d = zstd::stream::read::Decoder::new(reader)?;
            io::copy(&mut (&mut d).take(skip), &mut io::sink())?;
            let mut d = d.take(len);
            let mut buf = vec![0u8; CHUNK];
            let mut done = 0;
            loop {
                let n = d.read(&mut buf)?;
                if n == 0 {
                    return Ok(done);
                }
                sink(&buf[..n])?;
                done += n as u64;
            }
        }
    }
}

/// A reader from checkpoint `cp` whose first request covers the input up to the
/// first checkpoint at or past output offset `end` (the output before a checkpoint
/// comes from the input before it), so a read of known extent costs one request. It
/// stops short of a gzip stream's 8-byte trailer, which no output needs: a request
/// for a blob's last byte waits in the blob cache for the whole blob.
fn bounded<'a, S: RangeSource + ?Sized>(
    index: &LayerIndex,
    src: &'a S,
    cp: &gzip::Checkpoint,
    end: u64,
) -> RangeReader<'a, S> {
    let next = index.checkpoints.partition_point(|c| c.out < end);
    let stop = index
        .checkpoints
        .get(next)
        .map_or(index.blob_size, |c| c.input + 1);
    let tail = match index.compression {
        Compression::Gzip => 8,
        _ => 0,
    };
    let stop = stop.min(index.blob_size.saturating_sub(tail));
    RangeReader::new(src, cp.read_from()).first(stop.saturating_sub(cp.read_from()))
}

fn mismatch(index: &LayerIndex, entry: &Entry) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "{} of layer {}: the data read does not match the digest indexed",
            show(&entry.path),
            index.blob_digest
        ),
    )
}

/// The whole data of file `entry`, checked against the SHA-256 the index recorded
/// when the layer was read whole and verified.
pub fn read_file(
    index: &LayerIndex,
    src: &(impl RangeSource + ?Sized),
    entry: &Entry,
) -> io::Result<Vec<u8>> {
    let size = usize::try_from(entry.size).map_err(|_| io::Error::other("file too large"))?;
    let data = read_tar(index, src, entry.offset, size)?;
    if data.len() != size || Sha256::digest(&data).as_slice() != entry.digest {
        return Err(mismatch(index, entry));
    }
    Ok(data)
}

/// Writes the whole data of file `entry` to `out`, then checks it as [`read_file`]
/// does: on an error `out` holds bytes that must not be used.
pub fn copy_file(
    index: &LayerIndex,
    src: &(impl RangeSource + ?Sized),
    entry: &Entry,
    out: &mut (impl Write + ?Sized),
) -> io::Result<()> {
    let mut hash = Sha256::new();
    let n = stream_tar(index, src, entry.offset, entry.size, |b| {
        hash.update(b);
        out.write_all(b)
    })?;
    if n != entry.size || hash.finalize().as_slice() != entry.digest {
        return Err(mismatch(index, entry));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
