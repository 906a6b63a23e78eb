use std::io::Write;

use super::*;

/// Compressible but not trivial data: words from a small PRNG.
fn sample(len: usize, seed: u64) -> Vec<u8> {
    let words: [&[u8]; 8] = [
        b"layer ", b"blob ", b"digest ", b"sha256 ", b"tar\n", b"gzip ", b"zstd ", b"index ",
    ];
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        if x >> 60 == 0 {
            // Now and then a run of incompressible bytes.
            out.extend((0..64).map(|i| (x >> (i % 56)) as u8));
        } else {
            out.extend_from_slice(words[(x >> 61) as usize]);
        }
    }
    out.truncate(len);
    out
}

fn gzip_member(data: &[u8], name: Option<&str>) -> Vec<u8> {
    let mut b = flate2::GzBuilder::new();
    if let Some(n) = name {
        b = b.filename(n).comment("a comment").extra(vec![1, 2, 3, 4]);
    }
    let mut e = b.write(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn index(gz: &[u8], span: u64) -> (Vec<u8>, Vec<Checkpoint>, u64, u64) {
    let mut ix = Indexer::new(gz, span).unwrap();
    let mut out = Vec::new();
    // Small reads, as a tar walker makes them.
    let mut buf = [0u8; 7000];
    loop {
        let n = ix.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    let (cps, size, csize) = ix.finish().unwrap();
    (out, cps, size, csize)
}

fn check_reads(gz: &[u8], data: &[u8], cps: &[Checkpoint]) {
    let mut x = 7u64;
    for _ in 0..60 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let at = x % data.len() as u64;
        let len = 1 + (x >> 40) as usize % 20_000;
        let cp = checkpoint_for(cps, at).unwrap();
        let from = cp.read_from() as usize;
        let got = read_at(&gz[from..], cp, at, len).unwrap();
        let end = (at as usize + len).min(data.len());
        assert_eq!(
            got,
            &data[at as usize..end],
            "read {len} at {at} from {cp:?}"
        );
    }
}

#[test]
fn one_member_indexed_every_span_and_read_anywhere() {
    let data = sample(6 << 20, 1);
    let gz = gzip_member(&data, None);
    let (out, cps, size, csize) = index(&gz, 1 << 20);
    assert_eq!(out, data);
    assert_eq!((size, csize), (data.len() as u64, gz.len() as u64));
    assert!((5..=8).contains(&cps.len()), "{} checkpoints", cps.len());
    assert_eq!(cps[0].out, 0);
    assert!(cps.windows(2).all(|w| w[1].out - w[0].out >= 1 << 20));
    assert!(cps[1..].iter().all(|c| c.window.len() == WINDOW));
    assert!(
        cps.iter().any(|c| c.bits != 0),
        "no checkpoint inside a byte"
    );
    check_reads(&gz, &data, &cps);
}

#[test]
fn many_members_with_header_fields_and_padding_read_across_their_boundaries() {
    let parts: Vec<Vec<u8>> = (0..4)
        .map(|i| sample(700_000 + i * 1000, i as u64))
        .collect();
    let mut gz = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        gz.extend(gzip_member(p, (i % 2 == 1).then_some("name.tar")));
    }
    gz.extend([0u8; 1024]);
    let data = parts.concat();
    let (out, cps, _, _) = index(&gz, 256 << 10);
    assert_eq!(out, data);
    // Members start with a fresh window: some checkpoints have none past the first.
    assert!(cps.iter().skip(1).any(|c| c.window.is_empty()));
    check_reads(&gz, &data, &cps);
    // A read that starts in one member and ends in the next.
    let boundary = parts[0].len() as u64;
    let cp = checkpoint_for(&cps, boundary - 10).unwrap();
    let got = read_at(&gz[cp.read_from() as usize..], cp, boundary - 10, 20).unwrap();
    assert_eq!(got, &data[boundary as usize - 10..boundary as usize + 10]);
}

#[test]
fn damaged_streams_fail_without_panicking() {
    let data = sample(300_000, 3);
    let gz = gzip_member(&data, None);
    // Cut short.
    let mut ix = Indexer::new(&gz[..gz.len() / 2], 1 << 16).unwrap();
    let err = io::copy(&mut ix, &mut io::sink()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
    // Not gzip at all.
    let mut ix = Indexer::new(&b"plain text, not gzip"[..], 1 << 16).unwrap();
    let err = io::copy(&mut ix, &mut io::sink()).unwrap_err();
    assert!(err.to_string().contains("no gzip header"), "{err}");
    // Flipped bytes in the middle: an error (or, rarely, other bytes), never a panic.
    let mut bent = gz.clone();
    for i in (100..bent.len() - 100).step_by(997) {
        bent[i] ^= 0x5a;
    }
    let mut ix = Indexer::new(&bent[..], 1 << 16).unwrap();
    let mut out = Vec::new();
    assert!(ix.read_to_end(&mut out).is_err() || out != data);
    // Garbage after zero padding.
    let mut tail = gz.clone();
    tail.extend([0, 0, 7]);
    let mut ix = Indexer::new(&tail[..], 1 << 16).unwrap();
    assert!(io::copy(&mut ix, &mut io::sink()).is_err());
    // Empty input.
    let mut ix = Indexer::new(&b""[..], 1 << 16).unwrap();
    assert!(io::copy(&mut ix, &mut io::sink()).is_err());
    // Unfinished indexing hands nothing over.
    let ix = Indexer::new(&gz[..], 1 << 16).unwrap();
    assert!(ix.finish().is_err());
}

#[test]
fn a_read_before_its_checkpoint_or_past_the_end() {
    let data = sample(100_000, 4);
    let gz = gzip_member(&data, None);
    let (_, cps, _, _) = index(&gz, 1 << 30);
    assert_eq!(cps.len(), 1);
    let from = cps[0].read_from() as usize;
    assert_eq!(
        from, 10,
        "the first checkpoint is right after the gzip header"
    );
    let got = read_at(&gz[from..], &cps[0], 99_990, 100).unwrap();
    assert_eq!(got, &data[99_990..]);
    let late = Checkpoint {
        out: 10,
        ..cps[0].clone()
    };
    assert!(read_at(&gz[from..], &late, 5, 1).is_err());
}
