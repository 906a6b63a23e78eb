use super::*;

/// A layer with every kind of entry, long names, PAX uid and xattrs, and a big file
/// spanning several checkpoints.
pub(crate) fn sample_tar(big: usize) -> (Vec<u8>, Vec<u8>) {
    let mut b = ::tar::Builder::new(Vec::new());
    let mut add = |path: &str, t: ::tar::EntryType, data: &[u8], link: Option<&str>| {
        let mut h = ::tar::Header::new_gnu();
        h.set_entry_type(t);
        h.set_mode(if t == ::tar::EntryType::Directory {
            0o755
        } else {
            0o4750
        });
        h.set_uid(1000);
        h.set_gid(100);
        h.set_mtime(1_700_000_000);
        h.set_size(data.len() as u64);
        match link {
            Some(l) => b.append_link(&mut h, path, l).unwrap(),
            None => b.append_data(&mut h, path, data).unwrap(),
        }
    };
    add("./etc/", ::tar::EntryType::Directory, b"", None);
    add(
        "./etc/os-release",
        ::tar::EntryType::Regular,
        b"ID=test\n",
        None,
    );
    add(
        "etc/alias",
        ::tar::EntryType::Symlink,
        b"",
        Some("os-release"),
    );
    add(
        "etc/hard",
        ::tar::EntryType::Link,
        b"",
        Some("./etc/os-release"),
    );
    add("dev-fifo", ::tar::EntryType::Fifo, b"", None);
    let long = format!("deep/{}/file", "n".repeat(200));
    add(&long, ::tar::EntryType::Regular, b"long", None);
    add("etc/.wh.gone", ::tar::EntryType::Regular, b"", None);
    // Half random bytes, half text: deflate blocks of ordinary length.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let data: Vec<u8> = (0..big)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 2 == 0 {
                x as u8
            } else {
                b"layer index "[i % 12]
            }
        })
        .collect();
    // The builder refuses `..`: a raw header.
    let mut h = ::tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../escape");
    h.set_size(1);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, &b"x"[..]).unwrap();
    b.append_pax_extensions([
        ("SCHILY.xattr.user.note", &b"hello"[..]),
        ("uid", &b"3000000000"[..]),
    ])
    .unwrap();
    let mut h = ::tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, "big.bin", &data[..]).unwrap();
    let mut h = ::tar::Header::new_gnu();
    h.set_entry_type(::tar::EntryType::Char);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    h.set_size(0);
    b.append_data(&mut h, "null", io::empty()).unwrap();
    (b.into_inner().unwrap(), data)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn find<'a>(ix: &'a LayerIndex, path: &str) -> &'a Entry {
    ix.entries
        .iter()
        .find(|e| e.path == path.as_bytes())
        .unwrap_or_else(|| panic!("{path} not indexed"))
}

#[test]
fn every_entry_kind_is_indexed_with_its_metadata_and_data_offset() {
    let (tar, big) = sample_tar(3 << 20);
    let gz = gzip(&tar);
    let ix = build(&gz[..], 1 << 20).unwrap();
    assert_eq!(ix.compression, Compression::Gzip);
    assert_eq!(
        ix.blob_digest,
        format!("sha256:{}", hex::encode(Sha256::digest(&gz)))
    );
    assert_eq!(
        (ix.blob_size, ix.tar_size),
        (gz.len() as u64, tar.len() as u64)
    );
    let os = find(&ix, "etc/os-release");
    assert_eq!(
        (os.kind.clone(), os.mode, os.uid, os.gid, os.mtime, os.size),
        (Kind::File, 0o4750, 1000, 100, 1_700_000_000, 8)
    );
    assert_eq!(&tar[os.offset as usize..][..8], b"ID=test\n");
    assert_eq!(os.digest.to_vec(), Sha256::digest(b"ID=test\n").to_vec());
    assert_eq!(find(&ix, "etc").kind, Kind::Dir);
    assert_eq!(
        find(&ix, "etc/alias").kind,
        Kind::Symlink(b"os-release".to_vec())
    );
    assert_eq!(
        find(&ix, "etc/hard").kind,
        Kind::HardLink(b"etc/os-release".to_vec())
    );
    assert_eq!(find(&ix, "dev-fifo").kind, Kind::Fifo);
    assert_eq!(find(&ix, "null").kind, Kind::Char(1, 3));
    assert_eq!(find(&ix, &format!("deep/{}/file", "n".repeat(200))).size, 4);
    // Whiteouts stay entries of the layer; `..` paths are left out, with the reason.
    assert_eq!(find(&ix, "etc/.wh.gone").size, 0);
    assert!(ix.entries.iter().all(|e| !e.path.starts_with(b"..")));
    assert!(
        ix.left_out.iter().any(|l| l.contains("escape")),
        "{:?}",
        ix.left_out
    );
    let b = find(&ix, "big.bin");
    assert_eq!(b.uid, 3_000_000_000);
    assert_eq!(b.xattrs, vec![(b"user.note".to_vec(), b"hello".to_vec())]);
    // The big file's middle, read from its checkpoint, is its data.
    assert!(ix.checkpoints.len() >= 3);
    let at = b.offset + 2_000_000;
    let cp = gzip::checkpoint_for(&ix.checkpoints, at).unwrap();
    let got = gzip::read_at(&gz[cp.read_from() as usize..], cp, at, 4096).unwrap();
    assert_eq!(got, &big[2_000_000..2_000_000 + 4096]);
}

#[test]
fn zstd_and_plain_layers_give_the_same_entries() {
    let (tar, _) = sample_tar(100_000);
    let gz = build(&gzip(&tar)[..], DEFAULT_SPAN).unwrap();
    let zst = zstd::encode_all(&tar[..], 3).unwrap();
    let z = build(&zst[..], DEFAULT_SPAN).unwrap();
    let plain = build(&tar[..], DEFAULT_SPAN).unwrap();
    assert_eq!(
        (z.compression, plain.compression),
        (Compression::Zstd, Compression::None)
    );
    assert_eq!(z.entries, gz.entries);
    assert_eq!(plain.entries, gz.entries);
    // One zstd frame: one place to start, at 0; plain tar needs none.
    assert_eq!(z.checkpoints.len(), 1);
    assert_eq!((z.checkpoints[0].out, z.checkpoints[0].input), (0, 0));
    assert!(plain.checkpoints.is_empty());
    // The frame starts survive encoding.
    assert_eq!(LayerIndex::decode(&z.encode().unwrap()).unwrap(), z);
    assert_eq!(z.tar_size, tar.len() as u64);
}

#[test]
fn the_encoded_index_round_trips_and_refuses_any_damage() {
    let (tar, _) = sample_tar(2 << 20);
    let ix = build(&gzip(&tar)[..], 1 << 20).unwrap();
    let bytes = ix.encode().unwrap();
    assert_eq!(LayerIndex::decode(&bytes).unwrap(), ix);
    for i in [0, 17, bytes.len() / 2, bytes.len() - 1] {
        let mut bad = bytes.clone();
        bad[i] ^= 1;
        let err = LayerIndex::decode(&bad).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "byte {i}: {err}");
    }
    assert!(LayerIndex::decode(&bytes[..bytes.len() - 40]).is_err());
    assert!(LayerIndex::decode(b"").is_err());
    // Another version is not read.
    let mut other = bytes[..bytes.len() - 32].to_vec();
    other[16] = 99;
    let sum = Sha256::digest(&other);
    other.extend_from_slice(&sum);
    assert!(LayerIndex::decode(&other)
        .unwrap_err()
        .to_string()
        .contains("version 99"));
}

#[test]
fn at_4_mib_checkpoints_the_index_stays_under_one_percent_of_the_tar() {
    let (tar, _) = sample_tar(20 << 20);
    let ix = build(&gzip(&tar)[..], DEFAULT_SPAN).unwrap();
    let size = ix.encode().unwrap().len() as f64;
    assert!(ix.checkpoints.len() >= 4, "{}", ix.checkpoints.len());
    assert!(
        size / (tar.len() as f64) < 0.01,
        "index {size} bytes for {}",
        tar.len()
    );
}

#[test]
fn broken_layers_fail_cleanly() {
    let (tar, _) = sample_tar(300_000);
    let gz = gzip(&tar);
    assert!(build(&gz[..gz.len() / 2], DEFAULT_SPAN).is_err());
    let err = build(&tar[..tar.len() / 2], DEFAULT_SPAN).unwrap_err();
    assert!(err.to_string().contains("big.bin"), "{err}");
}
