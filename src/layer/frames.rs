//! Random access into zstd layers made of many frames: a frame can only be entered at
//! its start, so one sequential pass records where frames start (in the compressed and
//! the decompressed stream) about every span of output, and a later read starts at the
//! last frame start before it. A layer of one frame has one such point, at 0.

use std::io::{self, BufRead, Read};

use zstd::stream::raw::{Decoder, InBuffer, Operation, OutBuffer};

use super::gzip::Checkpoint;

/// A reader of a zstd stream that records frame starts as it decompresses.
pub struct FrameIndexer<R> {
    inner: R,
    decoder: Decoder<'static>,
    span: u64,
    consumed: u64,
    produced: u64,
    /// Between frames (at the start, and after a frame's last byte came out).
    between: bool,
    points: Vec<Checkpoint>,
}

impl<R: BufRead> FrameIndexer<R> {
    pub fn new(inner: R, span: u64) -> io::Result<FrameIndexer<R>> {
        Ok(FrameIndexer {
            inner,
            decoder: Decoder::new()?,
            span,
            consumed: 0,
            produced: 0,
            between: true,
            points: Vec::new(),
        })
    }

    /// The frame starts recorded (as checkpoints without a window) and the size of
    /// the output; call after reading to the end.
    pub fn finish(self) -> (Vec<Checkpoint>, u64) {
        (self.points, self.produced)
    }

    fn mark(&mut self) {
        let due = match self.points.last() {
            None => true,
            Some(last) => self.produced - last.out >= self.span,
        };
        if due {
            self.points.push(Checkpoint {
                out: self.produced,
                input: self.consumed,
                bits: 0,
                window: Vec::new(),
            });
        }
    }
}

impl<R: BufRead> Read for FrameIndexer<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if self.inner.fill_buf()?.is_empty() {
                if !self.between {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "zstd stream ends inside a frame",
                    ));
                }
                return Ok(0);
            }
            if self.between {
                self.mark();
            }
            let data = self.inner.fill_buf()?;
            let mut input = InBuffer::around(data);
            let mut output = OutBuffer::around(&mut *out);
            let hint = self.decoder.run(&mut input, &mut output)?;
            let (used, made) = (input.pos(), output.pos());
            self.inner.consume(used);
            self.consumed += used as u64;
            self.produced += made as u64;
            // 0: the frame is whole and all its output handed over.
            self.between = hint == 0;
            if made > 0 {
                return Ok(made);
            }
            if used == 0 && !self.between {
                return Err(io::Error::other("zstd decoder made no progress"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_starts_are_recorded_about_every_span() {
        let parts: Vec<Vec<u8>> = (0..6u8)
            .map(|i| (0..300_000u32).map(|j| (j % 251) as u8 ^ i).collect())
            .collect();
        let stream: Vec<u8> = parts
            .iter()
            .flat_map(|p| zstd::encode_all(&p[..], 3).unwrap())
            .collect();
        let mut ix = FrameIndexer::new(&stream[..], 500_000).unwrap();
        let mut all = Vec::new();
        ix.read_to_end(&mut all).unwrap();
        assert!(all == parts.concat(), "the output differs");
        let (points, size) = ix.finish();
        assert_eq!(size, 1_800_000);
        // Frames start every 300000 bytes; a point is kept once 500000 passed.
        let outs: Vec<u64> = points.iter().map(|p| p.out).collect();
        assert_eq!(outs, [0, 600_000, 1_200_000]);
        // Each point starts a frame that decodes on its own to the rest.
        for p in &points {
            let rest = zstd::decode_all(&stream[p.input as usize..]).unwrap();
            assert!(rest[..] == all[p.out as usize..], "from {}", p.out);
        }
        // A stream cut inside a frame is an error.
        let cut = &stream[..stream.len() - 10];
        let mut ix = FrameIndexer::new(cut, 500_000).unwrap();
        assert!(io::copy(&mut ix, &mut io::sink()).is_err());
    }
}
