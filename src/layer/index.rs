//! A layer's index: every tar entry's metadata and where its data sits in the
//! decompressed stream, each file's SHA-256, and (for gzip) the checkpoints a read can
//! start from. Built by one sequential pass over the blob, which also hashes the blob
//! so the caller can check it against the layer digest before keeping the index.
//!
//! On disk the index is versioned and checksummed ([`LayerIndex::encode`] /
//! [`LayerIndex::decode`]); a file whose version or checksum does not match is an error,
//! never trusted. Checkpoint windows are stored deflated.

use std::io::{self, BufRead, BufReader, Read, Write};

use sha2::{Digest, Sha256};

use super::gzip::{self, Checkpoint};
use super::tar::{normalize, show, walk};
use crate::copy::compress::sniff;
use crate::manifest::media_types::Compression;

/// Bytes of decompressed output between gzip checkpoints.
pub const DEFAULT_SPAN: u64 = 4 << 20;

/// What a tar entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink(Vec<u8>),
    /// A hard link to this (normalized) path.
    HardLink(Vec<u8>),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
}

/// One tar entry, as the layer holds it (whiteout files included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Relative, without `.` parts or slashes at either end.
    pub path: Vec<u8>,
    pub kind: Kind,
    /// Permission bits and set-id/sticky bits.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Seconds since the epoch.
    pub mtime: u64,
    /// Bytes of data (regular files; 0 otherwise).
    pub size: u64,
    /// Where the data starts in the decompressed stream.
    pub offset: u64,
    /// Extended attributes (`SCHILY.xattr.NAME` records).
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// SHA-256 of the data (regular files).
    pub digest: [u8; 32],
}

/// The index of one layer blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerIndex {
    pub compression: Compression,
    /// `sha256:HEX` of the blob bytes the index was built from.
    pub blob_digest: String,
    pub blob_size: u64,
    /// Size of the decompressed tar stream.
    pub tar_size: u64,
    pub entries: Vec<Entry>,
    /// Gzip: checkpoints; zstd: frame starts (windowless checkpoints; one at 0 for a
    /// layer of one frame, none in indexes of earlier versions); plain tar: none
    /// (offsets are blob offsets).
    pub checkpoints: Vec<Checkpoint>,
    /// Entries left out (a path with `..`, GNU sparse files), with the reason.
    pub left_out: Vec<String>,
}

/// Counts and hashes what passes through.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    n: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
}

/// Counts what passes through.
struct Counted<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

/// Builds the index of the layer blob `blob` (gzip, zstd or plain tar), with gzip
/// checkpoints every `span` bytes of output.
pub fn build(blob: impl Read, span: u64) -> io::Result<LayerIndex> {
    let mut hashed = Hashing {
        inner: blob,
        hasher: Sha256::new(),
        n: 0,
    };
    let mut input = BufReader::with_capacity(256 << 10, &mut hashed);
    let compression = sniff(input.fill_buf()?);
    let (entries, left_out, tar_size, checkpoints) = match compression {
        Compression::Gzip => {
            let mut ix = gzip::Indexer::new(&mut input, span)?;
            let (entries, left_out) = entries(&mut ix)?;
            io::copy(&mut ix, &mut io::sink())?;
            let (checkpoints, tar_size, _) = ix.finish()?;
            (entries, left_out, tar_size, checkpoints)
        }
        Compression::Zstd => {
            let mut d = super::frames::FrameIndexer::new(&mut input, span)?;
            let (entries, left_out) = entries(&mut d)?;
            io::copy(&mut d, &mut io::sink())?;
            let (frames, tar_size) = d.finish();
            (entries, left_out, tar_size, frames)
        }
        Compression::None => {
            let mut d = Counted {
                inner: &mut input,
                n: 0,
            };
            let (entries, left_out) = entries(&mut d)?;
            io::copy(&mut d, &mut io::sink())?;
            (entries, left_out, d.n, Vec::new())
        }
    };
    // What follows the compressed stream counts for the blob's digest too.
    io::copy(&mut input, &mut io::sink())?;
    drop(input);
    Ok(LayerIndex {
        compression,
        blob_digest: format!("sha256:{}", hex::encode(hashed.hasher.finalize())),
        blob_size: hashed.n,
        tar_size,
        entries,
        checkpoints,
        left_out,
    })
}

/// The entries of a decompressed layer tar.
fn entries(decoded: impl Read) -> io::Result<(Vec<Entry>, Vec<String>)> {
    use tar::EntryType as T;
    let mut out = Vec::new();
    let mut left_out = Vec::new();
    walk(decoded, |_, e| {
        let t = e.header().entry_type();
        if matches!(
            t,
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink
        ) {
            return Ok(());
        }
        let raw = e.path_bytes().into_owned();
        let Some(path) = normalize(&raw) else {
            left_out.push(format!("{}: the path climbs with ..", show(&raw)));
            return Ok(());
        };
        let h = e.header();
        let mut uid = h.uid().unwrap_or(0);
        let mut gid = h.gid().unwrap_or(0);
        let mut mtime = h.mtime().unwrap_or(0);
        let mode = h.mode().unwrap_or(0) & 0o7777;
        let dev = || {
            (
                h.device_major().ok().flatten().unwrap_or(0),
                h.device_minor().ok().flatten().unwrap_or(0),
            )
        };
        let link = || {
            e.link_name_bytes()
                .map(|l| l.into_owned())
                .unwrap_or_default()
        };
        let kind = match t {
            T::Regular | T::Continuous => Kind::File,
            T::Directory => Kind::Dir,
            T::Symlink => Kind::Symlink(link()),
            T::Link => match normalize(&link()) {
                Some(target) if !target.is_empty() => Kind::HardLink(target),
                _ => {
                    left_out.push(format!(
                        "{}: a hard link without a usable target",
                        show(&raw)
                    ));
                    return Ok(());
                }
            },
            T::Char => {
                let (a, b) = dev();
                Kind::Char(a, b)
            }
            T::Block => {
                let (a, b) = dev();
                Kind::Block(a, b)
            }
            T::Fifo => Kind::Fifo,
            other => {
                left_out.push(format!(
                    "{}: entry type {other:?} is not supported",
                    show(&raw)
                ));
                return Ok(());
            }
        };
        let mut xattrs = Vec::new();
        if let Some(exts) = e.pax_extensions()? {
            for ext in exts {
                let ext = ext?;
                let Ok(key) = ext.key() else { continue };
                let num = || {
                    std::str::from_utf8(ext.value_bytes())
                        .ok()
                        .and_then(|v| v.split('.').next()?.parse::<u64>().ok())
                };
                match key {
                    "uid" => uid = num().unwrap_or(uid),
                    "gid" => gid = num().unwrap_or(gid),
                    "mtime" => mtime = num().unwrap_or(mtime),
                    k => {
                        if let Some(name) = k.strip_prefix("SCHILY.xattr.") {
                            xattrs.push((name.as_bytes().to_vec(), ext.value_bytes().to_vec()));
                        }
                    }
                }
            }
        }
        let offset = e.raw_file_position();
        let (size, digest) = if kind == Kind::File {
            let mut hasher = Sha256::new();
            let n = io::copy(e, &mut HashWriter(&mut hasher))?;
            (n, hasher.finalize().into())
        } else {
            (0, [0u8; 32])
        };
        out.push(Entry {
            path,
            kind,
            mode,
            uid,
            gid,
            mtime,
            size,
            offset,
            xattrs,
            digest,
        });
        Ok(())
    })?;
    Ok((out, left_out))
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

const MAGIC: &[u8; 16] = b"scry layer index";
/// Raised whenever the encoding changes: older files are rebuilt, never misread.
pub const FORMAT_VERSION: u32 = 1;

impl LayerIndex {
    /// The on-disk form: magic, version, body, SHA-256 of all before it.
    pub fn encode(&self) -> io::Result<Vec<u8>> {
        let mut w = Vec::with_capacity(64 + self.entries.len() * 96);
        w.extend_from_slice(MAGIC);
        put_u32(&mut w, FORMAT_VERSION);
        w.push(match self.compression {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Zstd => 2,
        });
        put_bytes(&mut w, self.blob_digest.as_bytes());
        put_u64(&mut w, self.blob_size);
        put_u64(&mut w, self.tar_size);
        put_u64(&mut w, self.checkpoints.len() as u64);
        for c in &self.checkpoints {
            put_u64(&mut w, c.out);
            put_u64(&mut w, c.input);
            w.push(c.bits);
            let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
            z.write_all(&c.window)?;
            put_bytes(&mut w, &z.finish()?);
        }
        put_u64(&mut w, self.entries.len() as u64);
        for e in &self.entries {
            put_bytes(&mut w, &e.path);
            match &e.kind {
                Kind::File => w.push(0),
                Kind::Dir => w.push(1),
                Kind::Symlink(t) => {
                    w.push(2);
                    put_bytes(&mut w, t);
                }
                Kind::HardLink(t) => {
                    w.push(3);
                    put_bytes(&mut w, t);
                }
                Kind::Char(a, b) => {
                    w.push(4);
                    put_u32(&mut w, *a);
                    put_u32(&mut w, *b);
                }
                Kind::Block(a, b) => {
                    w.push(5);
                    put_u32(&mut w, *a);
                    put_u32(&mut w, *b);
                }
                Kind::Fifo => w.push(6),
            }
            put_u32(&mut w, e.mode);
            put_u64(&mut w, e.uid);
            put_u64(&mut w, e.gid);
            put_u64(&mut w, e.mtime);
            put_u64(&mut w, e.size);
            put_u64(&mut w, e.offset);
            w.extend_from_slice(&e.digest);
            put_u64(&mut w, e.xattrs.len() as u64);
            for (k, v) in &e.xattrs {
                put_bytes(&mut w, k);
                put_bytes(&mut w, v);
            }
        }
        put_u64(&mut w, self.left_out.len() as u64);
        for l in &self.left_out {
            put_bytes(&mut w, l.as_bytes());
        }
        let sum = Sha256::digest(&w);
        w.extend_from_slice(&sum);
        Ok(w)
    }

    /// Reads [`LayerIndex::encode`]'s form; any mismatch (magic, version, checksum,
    /// length) is an `InvalidData` error.
    pub fn decode(data: &[u8]) -> io::Result<LayerIndex> {
        if data.len() < MAGIC.len() + 4 + 32 || &data[..MAGIC.len()] != MAGIC {
            return Err(invalid("not a layer index"));
        }
        let (body, sum) = data.split_at(data.len() - 32);
        if Sha256::digest(body).as_slice() != sum {
            return Err(invalid("layer index checksum does not match"));
        }
        let mut r = Cursor {
            data: body,
            pos: MAGIC.len(),
        };
        let version = r.u32()?;
        if version != FORMAT_VERSION {
            return Err(invalid(&format!(
                "layer index version {version}, expected {FORMAT_VERSION}"
            )));
        }
        let compression = match r.u8()? {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Zstd,
            c => return Err(invalid(&format!("unknown compression {c}"))),
        };
        let blob_digest = String::from_utf8(r.bytes()?.to_vec())
            .map_err(|_| invalid("blob digest is not text"))?;
        let blob_size = r.u64()?;
        let tar_size = r.u64()?;
        let n = r.count()?;
        let mut checkpoints = Vec::with_capacity(n);
        for _ in 0..n {
            let out = r.u64()?;
            let input = r.u64()?;
            let bits = r.u8()?;
            let mut window = Vec::new();
            flate2::read::DeflateDecoder::new(r.bytes()?)
                .take(gzip::WINDOW as u64 + 1)
                .read_to_end(&mut window)?;
            if window.len() > gzip::WINDOW || bits > 7 {
                return Err(invalid("bad checkpoint"));
            }
            checkpoints.push(Checkpoint {
                out,
                input,
                bits,
                window,
            });
        }
        let n = r.count()?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let path = r.bytes()?.to_vec();
            let kind = match r.u8()? {
                0 => Kind::File,
                1 => Kind::Dir,
                2 => Kind::Symlink(r.bytes()?.to_vec()),
                3 => Kind::HardLink(r.bytes()?.to_vec()),
                4 => Kind::Char(r.u32()?, r.u32()?),
                5 => Kind::Block(r.u32()?, r.u32()?),
                6 => Kind::Fifo,
                k => return Err(invalid(&format!("unknown entry kind {k}"))),
            };
            let (mode, uid, gid, mtime, size, offset) =
                (r.u32()?, r.u64()?, r.u64()?, r.u64()?, r.u64()?, r.u64()?);
            let digest: [u8; 32] = r.take(32)?.try_into().expect("32 bytes");
            let nx = r.count()?;
            let mut xattrs = Vec::with_capacity(nx);
            for _ in 0..nx {
                xattrs.push((r.bytes()?.to_vec(), r.bytes()?.to_vec()));
            }
            entries.push(Entry {
                path,
                kind,
                mode,
                uid,
                gid,
                mtime,
                size,
                offset,
                xattrs,
                digest,
            });
        }
        let n = r.count()?;
        let mut left_out = Vec::with_capacity(n);
        for _ in 0..n {
            left_out.push(String::from_utf8_lossy(r.bytes()?).into_owned());
        }
        if r.pos != body.len() {
            return Err(invalid("trailing bytes in layer index"));
        }
        Ok(LayerIndex {
            compression,
            blob_digest,
            blob_size,
            tar_size,
            entries,
            checkpoints,
            left_out,
        })
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

fn put_u32(w: &mut Vec<u8>, v: u32) {
    w.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(w: &mut Vec<u8>, v: u64) {
    w.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(w: &mut Vec<u8>, b: &[u8]) {
    put_u64(w, b.len() as u64);
    w.extend_from_slice(b);
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.data.len())
            .ok_or_else(|| invalid("layer index ends early"))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    /// A count that cannot exceed what is left (each item takes at least a byte).
    fn count(&mut self) -> io::Result<usize> {
        let n = self.u64()?;
        if n > (self.data.len() - self.pos) as u64 {
            return Err(invalid("layer index count past its end"));
        }
        Ok(n as usize)
    }
    fn bytes(&mut self) -> io::Result<&'a [u8]> {
        let n = self.u64()?;
        let n = usize::try_from(n).map_err(|_| invalid("length too large"))?;
        self.take(n)
    }
}

#[cfg(test)]
pub(crate) mod tests;
