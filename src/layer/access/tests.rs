use std::cell::Cell;
use std::io::Write;

use super::*;
use crate::layer::index::{build, DEFAULT_SPAN};

/// A blob in memory that counts the bytes asked of it.
struct Counting {
    data: Vec<u8>,
    fetched: Cell<u64>,
    requests: Cell<u64>,
    /// The end of the furthest range asked for.
    last: Cell<u64>,
}

impl RangeSource for Counting {
    fn size(&self) -> u64 {
        self.data.len() as u64
    }
    fn read_range(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.fetched.set(self.fetched.get() + len as u64);
        self.requests.set(self.requests.get() + 1);
        self.last.set(self.last.get().max(offset + len as u64));
        Ok(self.data[offset as usize..offset as usize + len].to_vec())
    }
}

fn noisy(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 2 == 0 {
                x as u8
            } else {
                b"some text "[i % 10]
            }
        })
        .collect()
}

fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = ::tar::Builder::new(Vec::new());
    for (p, data) in files {
        let mut h = ::tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, p, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn src(data: Vec<u8>) -> Counting {
    Counting {
        data,
        fetched: Cell::new(0),
        requests: Cell::new(0),
        last: Cell::new(0),
    }
}

#[test]
fn a_small_read_in_the_middle_of_a_big_gzip_layer_fetches_about_one_span() {
    let big = noisy(24 << 20, 5);
    let tar = layer(&[
        ("etc/os-release", b"ID=test\n"),
        ("big", &big),
        ("z", b"end"),
    ]);
    let blob = src(gzip(&tar));
    let ix = build(&blob.data[..], DEFAULT_SPAN).unwrap();
    let e = ix.entries.iter().find(|e| e.path == b"big").unwrap();
    let at = e.offset + 13_000_000;
    let got = read_tar(&ix, &blob, at, 4096).unwrap();
    assert_eq!(got, &big[13_000_000..13_000_000 + 4096]);
    let fetched = blob.fetched.get();
    assert!(
        fetched <= 2 * DEFAULT_SPAN,
        "fetched {fetched} compressed bytes"
    );
    assert!(fetched < blob.data.len() as u64 / 4, "fetched {fetched}");
    // One request: the checkpoints bound the compressed span the read needs.
    assert_eq!(blob.requests.get(), 1);
    // Whole small files are checked against their indexed digest.
    let os = ix
        .entries
        .iter()
        .find(|e| e.path == b"etc/os-release")
        .unwrap();
    assert_eq!(read_file(&ix, &blob, os).unwrap(), b"ID=test\n");
    let z = ix.entries.iter().find(|e| e.path == b"z").unwrap();
    blob.requests.set(0);
    assert_eq!(read_file(&ix, &blob, z).unwrap(), b"end");
    // The last file, in the last span: one request, short of the gzip trailer (a
    // request for the blob's last byte would wait for the whole blob in the cache).
    assert_eq!(blob.requests.get(), 1);
    assert!(blob.last.get() <= blob.data.len() as u64 - 8);
    // A whole big file streams out across checkpoints, checked at its end.
    let mut out = Vec::new();
    copy_file(&ix, &blob, e, &mut out).unwrap();
    assert!(out == big, "the streamed file differs");
}

#[test]
fn plain_and_zstd_layers_read_at_any_offset() {
    let data = noisy(300_000, 9);
    let tar = layer(&[("a", b"alpha"), ("d", &data)]);
    for blob in [
        src(tar.clone()),
        src(zstd::encode_all(&tar[..], 3).unwrap()),
    ] {
        let ix = build(&blob.data[..], DEFAULT_SPAN).unwrap();
        let e = ix.entries.iter().find(|e| e.path == b"d").unwrap();
        assert_eq!(read_file(&ix, &blob, e).unwrap(), data);
        let got = read_tar(&ix, &blob, e.offset + 1000, 10).unwrap();
        assert_eq!(got, &data[1000..1010]);
        // Past the end: nothing.
        assert!(read_tar(&ix, &blob, ix.tar_size, 10).unwrap().is_empty());
    }
}

#[test]
fn bytes_that_changed_since_indexing_are_refused() {
    let tar = layer(&[("a", b"alpha"), ("b", b"bravo")]);
    let ix = build(&tar[..], DEFAULT_SPAN).unwrap();
    let b = ix.entries.iter().find(|e| e.path == b"b").unwrap().clone();
    let mut bent = tar.clone();
    bent[b.offset as usize] ^= 1;
    let err = read_file(&ix, &src(bent.clone()), &b).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("does not match"), "{err}");
    let err = copy_file(&ix, &src(bent), &b, &mut Vec::new()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    // A source that comes back short is an error, not fewer bytes.
    struct Short;
    impl RangeSource for Short {
        fn size(&self) -> u64 {
            1 << 20
        }
        fn read_range(&self, _: u64, len: usize) -> io::Result<Vec<u8>> {
            Ok(vec![0; len / 2])
        }
    }
    let gz = gzip(&tar);
    let ix = build(&gz[..], DEFAULT_SPAN).unwrap();
    assert!(read_tar(&ix, &Short, 0, 100).is_err());
}

#[test]
fn a_zstd_layer_of_many_frames_is_read_from_the_frame_before() {
    let big = noisy(12 << 20, 3);
    let tar = layer(&[("a", b"alpha"), ("big", &big), ("z", b"end")]);
    // A frame for every MiB of tar, as a chunking writer makes them.
    let frames: Vec<u8> = tar
        .chunks(1 << 20)
        .flat_map(|c| zstd::encode_all(c, 3).unwrap())
        .collect();
    let blob = src(frames);
    let ix = build(&blob.data[..], DEFAULT_SPAN).unwrap();
    assert!(
        ix.checkpoints.len() >= 3,
        "{} frame starts",
        ix.checkpoints.len()
    );
    let e = ix.entries.iter().find(|e| e.path == b"big").unwrap();
    let got = read_tar(&ix, &blob, e.offset + 9_000_000, 4096).unwrap();
    assert_eq!(got, &big[9_000_000..9_000_000 + 4096]);
    let fetched = blob.fetched.get();
    assert!(fetched < blob.data.len() as u64 / 2, "fetched {fetched}");
    assert_eq!(blob.requests.get(), 1);
    let z = ix.entries.iter().find(|e| e.path == b"z").unwrap();
    assert_eq!(read_file(&ix, &blob, z).unwrap(), b"end");
    // One frame: one start, at 0.
    let one = build(&zstd::encode_all(&tar[..], 3).unwrap()[..], DEFAULT_SPAN).unwrap();
    assert_eq!(one.checkpoints.len(), 1);
    assert_eq!((one.checkpoints[0].out, one.checkpoints[0].input), (0, 0));
}
