//! Random access into ordinary gzip streams.
//!
//! One sequential pass ([`Indexer`], a [`Read`] of the decompressed bytes) records a
//! [`Checkpoint`] at the end of a deflate block about every `span` bytes of output: the
//! compressed offset, the bits of the last byte not yet used, and the 32 KiB of output
//! before it (the window later back-references may reach into). [`read_at`] later
//! starts a raw inflate at a checkpoint — primed with those bits and that window — and
//! so reads any range after decompressing at most one span. Streams of many gzip
//! members (concatenated files) are handled: each member starts with a checkpoint of
//! its own when a span has passed, and reads run on across member boundaries.

use std::io::{self, Read};
use std::os::raw::c_int;

use libz_rs_sys as z;

/// Bytes of output a back-reference may reach: deflate's window.
pub const WINDOW: usize = 32 * 1024;

/// A place a read can start from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Offset in the decompressed stream.
    pub out: u64,
    /// Offset in the compressed stream of the first byte not wholly used; when `bits`
    /// is not 0, the byte before it holds that many bits still to be read.
    pub input: u64,
    /// Unused bits (0–7) of the byte at `input - 1`.
    pub bits: u8,
    /// Up to [`WINDOW`] bytes of output before `out` (empty at a member's start).
    pub window: Vec<u8>,
}

impl Checkpoint {
    /// Where reading from this checkpoint starts in the compressed stream.
    pub fn read_from(&self) -> u64 {
        self.input - u64::from(self.bits > 0)
    }
}

/// A raw inflate stream (no gzip or zlib wrapper), freed when dropped.
struct Inflate {
    // Boxed: zlib's state points back at the stream, which must not move.
    strm: Box<z::z_stream>,
}

// The stream owns its state exclusively; nothing in it is tied to a thread.
unsafe impl Send for Inflate {}

fn zerr(what: &str, code: c_int) -> io::Error {
    let kind = if code == z::Z_DATA_ERROR {
        io::ErrorKind::InvalidData
    } else {
        io::ErrorKind::Other
    };
    io::Error::new(kind, format!("{what} (zlib code {code})"))
}

impl Inflate {
    fn raw() -> io::Result<Inflate> {
        let mut strm = Box::new(z::z_stream::default());
        // SAFETY: `strm` is a default-initialised stream with zlib's allocator fields
        // unset; version and size are this library's own.
        let code = unsafe {
            z::inflateInit2_(
                &mut *strm,
                -15,
                z::zlibVersion(),
                std::mem::size_of::<z::z_stream>() as c_int,
            )
        };
        if code != z::Z_OK {
            return Err(zerr("starting inflate", code));
        }
        Ok(Inflate { strm })
    }

    /// Starts a new raw deflate stream.
    fn reset(&mut self) -> io::Result<()> {
        // SAFETY: the stream was initialised by `raw`.
        let code = unsafe { z::inflateReset2(&mut *self.strm, -15) };
        if code != z::Z_OK {
            return Err(zerr("resetting inflate", code));
        }
        Ok(())
    }

    /// Feeds `bits` bits (the high bits of `byte`) before the next input.
    fn prime(&mut self, bits: u8, byte: u8) -> io::Result<()> {
        let value = c_int::from(byte) >> (8 - c_int::from(bits));
        // SAFETY: the stream was initialised by `raw`.
        let code = unsafe { z::inflatePrime(&mut *self.strm, c_int::from(bits), value) };
        if code != z::Z_OK {
            return Err(zerr("priming inflate", code));
        }
        Ok(())
    }

    fn set_window(&mut self, window: &[u8]) -> io::Result<()> {
        if window.is_empty() {
            return Ok(());
        }
        // SAFETY: the pointer and length come from a live slice.
        let code = unsafe {
            z::inflateSetDictionary(&mut *self.strm, window.as_ptr(), window.len() as z::uInt)
        };
        if code != z::Z_OK {
            return Err(zerr("setting the inflate window", code));
        }
        Ok(())
    }

    /// One inflate call: (input used, output made, zlib's code, `data_type`).
    fn step(&mut self, input: &[u8], out: &mut [u8], flush: c_int) -> (usize, usize, c_int, c_int) {
        let avail_in = input.len().min(u32::MAX as usize);
        let avail_out = out.len().min(u32::MAX as usize);
        self.strm.next_in = input.as_ptr();
        self.strm.avail_in = avail_in as z::uInt;
        self.strm.next_out = out.as_mut_ptr();
        self.strm.avail_out = avail_out as z::uInt;
        // SAFETY: next_in/avail_in and next_out/avail_out describe live slices for
        // the duration of the call; the stream was initialised by `raw`.
        let code = unsafe { z::inflate(&mut *self.strm, flush) };
        let used = avail_in - self.strm.avail_in as usize;
        let made = avail_out - self.strm.avail_out as usize;
        self.strm.next_in = std::ptr::null();
        self.strm.next_out = std::ptr::null_mut();
        (used, made, code, self.strm.data_type)
    }
}

impl Drop for Inflate {
    fn drop(&mut self) {
        // SAFETY: the stream was initialised by `raw` and is ended once.
        unsafe {
            z::inflateEnd(&mut *self.strm);
        }
    }
}

/// Compressed input with its absolute offset.
struct Input<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Offset in the compressed stream of `buf[start]`.
    offset: u64,
}

impl<R: Read> Input<R> {
    fn new(inner: R, offset: u64) -> Input<R> {
        Input {
            inner,
            buf: vec![0; 64 * 1024],
            start: 0,
            end: 0,
            offset,
        }
    }

    /// The buffered bytes, reading more when none are; empty at the end.
    fn fill(&mut self) -> io::Result<&[u8]> {
        if self.start == self.end {
            self.start = 0;
            self.end = loop {
                match self.inner.read(&mut self.buf) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
        }
        Ok(&self.buf[self.start..self.end])
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.offset += n as u64;
    }

    fn byte(&mut self) -> io::Result<Option<u8>> {
        let b = self.fill()?.first().copied();
        if b.is_some() {
            self.consume(1);
        }
        Ok(b)
    }

    fn need(&mut self, what: &str) -> io::Result<u8> {
        self.byte()?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("gzip stream ends inside {what} (at byte {})", self.offset),
            )
        })
    }

    fn skip(&mut self, mut n: usize, what: &str) -> io::Result<()> {
        while n > 0 {
            let have = self.fill()?.len();
            if have == 0 {
                self.need(what)?;
            }
            let k = have.min(n);
            self.consume(k);
            n -= k;
        }
        Ok(())
    }

    /// Reads a gzip member header (RFC 1952); `false` at the end of the stream or
    /// where only padding (zeros) follows the last member.
    fn member_header(&mut self, first: bool) -> io::Result<bool> {
        let Some(id1) = self.byte()? else {
            if first {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "empty gzip stream",
                ));
            }
            return Ok(false);
        };
        if !first && id1 == 0 {
            // Zero padding after the last member: the end.
            loop {
                match self.byte()? {
                    None => return Ok(false),
                    Some(0) => {}
                    Some(_) => {
                        return Err(bad("bytes after zero padding past the last gzip member"))
                    }
                }
            }
        }
        let id2 = self.need("a gzip header")?;
        if (id1, id2) != (0x1f, 0x8b) {
            return Err(bad(&format!(
                "no gzip header at byte {} (found {id1:#04x} {id2:#04x})",
                self.offset - 2
            )));
        }
        if self.need("a gzip header")? != 8 {
            return Err(bad("gzip member is not deflate-compressed"));
        }
        let flags = self.need("a gzip header")?;
        self.skip(6, "a gzip header")?; // mtime, extra flags, OS
        if flags & 4 != 0 {
            let lo = self.need("a gzip extra field")?;
            let hi = self.need("a gzip extra field")?;
            self.skip(
                usize::from(u16::from_le_bytes([lo, hi])),
                "a gzip extra field",
            )?;
        }
        for (bit, what) in [(8, "a gzip file name"), (16, "a gzip comment")] {
            if flags & bit != 0 {
                while self.need(what)? != 0 {}
            }
        }
        if flags & 2 != 0 {
            self.skip(2, "a gzip header checksum")?;
        }
        Ok(true)
    }
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Decompresses a gzip stream as a [`Read`], recording checkpoints about every `span`
/// bytes of output; [`Indexer::finish`] hands them over once the stream was read to
/// its end.
pub struct Indexer<R> {
    input: Input<R>,
    inflate: Inflate,
    span: u64,
    out: u64,
    /// The latest output, at least the last [`WINDOW`] bytes of it.
    history: Vec<u8>,
    checkpoints: Vec<Checkpoint>,
    /// Inside a member's deflate data (`false` between members).
    in_member: bool,
    done: bool,
}

impl<R: Read> Indexer<R> {
    pub fn new(inner: R, span: u64) -> io::Result<Indexer<R>> {
        Ok(Indexer {
            input: Input::new(inner, 0),
            inflate: Inflate::raw()?,
            span: span.max(1),
            out: 0,
            history: Vec::with_capacity(4 * WINDOW),
            checkpoints: Vec::new(),
            in_member: false,
            done: false,
        })
    }

    /// The checkpoints, the decompressed size and the compressed size; an error unless
    /// the whole stream was read.
    pub fn finish(self) -> io::Result<(Vec<Checkpoint>, u64, u64)> {
        if !self.done {
            return Err(io::Error::other("gzip stream not read to its end"));
        }
        Ok((self.checkpoints, self.out, self.input.offset))
    }

    fn due(&self) -> bool {
        match self.checkpoints.last() {
            None => true,
            Some(c) => self.out - c.out >= self.span,
        }
    }

    fn record(&mut self, bits: u8, window: bool) {
        let window = if window {
            let from = self.history.len().saturating_sub(WINDOW);
            self.history[from..].to_vec()
        } else {
            Vec::new()
        };
        self.checkpoints.push(Checkpoint {
            out: self.out,
            input: self.input.offset,
            bits,
            window,
        });
    }

    fn remember(&mut self, made: &[u8]) {
        if self.history.len() + made.len() > 4 * WINDOW {
            let keep = WINDOW.saturating_sub(made.len());
            let from = self.history.len() - keep.min(self.history.len());
            self.history.drain(..from);
        }
        self.history.extend_from_slice(made);
    }
}

impl<R: Read> Read for Indexer<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.done {
                return Ok(0);
            }
            if !self.in_member {
                let first = self.checkpoints.is_empty() && self.input.offset == 0;
                if !self.input.member_header(first)? {
                    self.done = true;
                    return Ok(0);
                }
                self.inflate.reset()?;
                self.history.clear();
                self.in_member = true;
                if self.due() {
                    self.record(0, false);
                }
            }
            let input = self.input.fill()?;
            let at_end = input.is_empty();
            let (used, made, code, data_type) = self.inflate.step(input, buf, z::Z_BLOCK);
            self.input.consume(used);
            self.out += made as u64;
            self.remember(&buf[..made]);
            match code {
                z::Z_STREAM_END => {
                    self.input.skip(8, "a gzip member trailer")?;
                    self.in_member = false;
                }
                z::Z_OK | z::Z_BUF_ERROR => {
                    if at_end && used == 0 && made == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!(
                                "gzip stream ends inside compressed data (at byte {})",
                                self.input.offset
                            ),
                        ));
                    }
                    // At the end of a block that is not the member's last.
                    if data_type & 128 != 0 && data_type & 64 == 0 && self.due() {
                        self.record((data_type & 7) as u8, true);
                    }
                }
                code => return Err(zerr("corrupt gzip data", code)),
            }
            if made > 0 {
                return Ok(made);
            }
        }
    }
}

/// Reads `len` bytes from decompressed offset `at` of a gzip stream, starting at
/// checkpoint `cp` (`cp.out <= at`); `input` yields the compressed stream from
/// [`Checkpoint::read_from`] on. Fewer bytes come back only at the stream's end.
pub fn read_at(input: impl Read, cp: &Checkpoint, at: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(len);
    stream_at(input, cp, at, len as u64, |b| {
        out.extend_from_slice(b);
        Ok(())
    })?;
    Ok(out)
}

/// Like [`read_at`], handing the bytes to `sink` piece by piece; returns how many
/// it handed over (fewer than `len` only at the stream's end).
pub fn stream_at(
    input: impl Read,
    cp: &Checkpoint,
    at: u64,
    len: u64,
    mut sink: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<u64> {
    if at < cp.out {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("offset {at} lies before the checkpoint at {}", cp.out),
        ));
    }
    let mut input = Input::new(input, cp.read_from());
    let mut inflate = Inflate::raw()?;
    if cp.bits > 0 {
        let byte = input.need("the byte a checkpoint starts in")?;
        inflate.prime(cp.bits, byte)?;
    }
    inflate.set_window(&cp.window)?;
    let mut skip = at - cp.out;
    let mut done = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    let mut in_member = true;
    while done < len {
        if !in_member {
            if !input.member_header(false)? {
                break;
            }
            inflate.reset()?;
            in_member = true;
        }
        let data = input.fill()?;
        let at_end = data.is_empty();
        let (used, made, code, _) = inflate.step(data, &mut buf, z::Z_NO_FLUSH);
        input.consume(used);
        let mut produced = &buf[..made];
        let dropped = (skip.min(made as u64)) as usize;
        produced = &produced[dropped..];
        skip -= dropped as u64;
        let want = ((len - done) as usize).min(produced.len());
        if want > 0 {
            sink(&produced[..want])?;
            done += want as u64;
        }
        match code {
            z::Z_STREAM_END => {
                if done >= len {
                    // Done: the trailer is not needed (and may not have been fetched).
                    break;
                }
                input.skip(8, "a gzip member trailer")?;
                in_member = false;
            }
            z::Z_OK | z::Z_BUF_ERROR => {
                if at_end && used == 0 && made == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "gzip stream ends inside compressed data",
                    ));
                }
            }
            code => return Err(zerr("corrupt gzip data", code)),
        }
    }
    Ok(done)
}

/// The last checkpoint at or before decompressed offset `at`.
pub fn checkpoint_for(checkpoints: &[Checkpoint], at: u64) -> Option<&Checkpoint> {
    let i = checkpoints.partition_point(|c| c.out <= at);
    i.checked_sub(1).map(|i| &checkpoints[i])
}

#[cfg(test)]
mod tests;
