use std::collections::BTreeMap;
use std::io::Write;

use super::*;

/// One entry of a test layer.
enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a str),
    Link(&'a str, &'a str),
    Sym(&'a str, &'a str),
}

fn layer(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_mtime(1_600_000_000);
        match e {
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, io::empty()).unwrap();
            }
            E::File(p, data) => {
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, data.as_bytes()).unwrap();
            }
            E::Link(p, target) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
            E::Sym(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// What a written entry is, for comparison.
#[derive(Debug, PartialEq, Eq)]
enum Out {
    Dir,
    File(String),
    Link(String),
    Sym(String),
}

/// Merges `layers` (bottom first) and reads the stream back: entries in order.
fn merged(layers: Vec<Vec<u8>>) -> (Vec<(String, Out)>, Summary) {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = layers
        .iter()
        .enumerate()
        .map(|(i, data)| {
            let p = dir.path().join(format!("l{i}"));
            std::fs::write(&p, data).unwrap();
            p
        })
        .collect();
    let mut out = Vec::new();
    let summary = merge(&paths, dir.path(), &mut out).unwrap();
    let mut a = tar::Archive::new(&out[..]);
    let entries = a
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let link = || {
                e.link_name()
                    .unwrap()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            };
            let out = match e.header().entry_type() {
                tar::EntryType::Directory => Out::Dir,
                tar::EntryType::Link => Out::Link(link()),
                tar::EntryType::Symlink => Out::Sym(link()),
                _ => {
                    let mut s = String::new();
                    e.read_to_string(&mut s).unwrap();
                    Out::File(s)
                }
            };
            (path, out)
        })
        .collect();
    (entries, summary)
}

fn file(p: &str, data: &str) -> (String, Out) {
    (p.into(), Out::File(data.into()))
}

fn dir(p: &str) -> (String, Out) {
    (p.into(), Out::Dir)
}

#[test]
fn upper_layers_and_later_entries_win() {
    let (got, summary) = merged(vec![
        layer(&[
            E::Dir("etc/"),
            E::File("etc/a", "one"),
            E::File("./etc/b", "b"),
        ]),
        gzip(&layer(&[
            E::File("etc/a", "two"),
            E::File("etc/c", "first"),
            E::File("etc/c", "second"),
        ])),
    ]);
    assert_eq!(
        got,
        vec![
            dir("etc"),
            file("etc/b", "b"),
            file("etc/a", "two"),
            file("etc/c", "second"),
        ]
    );
    assert_eq!(
        summary,
        Summary {
            layers: 2,
            entries: 4,
            dropped: 2
        }
    );
}

#[test]
fn whiteouts_hide_files_and_whole_directories_of_lower_layers_only() {
    let (got, _) = merged(vec![
        layer(&[
            E::Dir("d"),
            E::File("d/gone", "x"),
            E::Dir("d/sub"),
            E::File("d/sub/deep", "x"),
            E::File("d/stays", "s"),
            E::File("top", "t"),
        ]),
        layer(&[
            E::File("d/.wh.gone", ""),
            E::File("d/.wh.sub", ""),
            E::File(".wh.top", ""),
            // A whiteout does not hide its own layer's file.
            E::File("new", "n"),
            E::File(".wh.new", ""),
        ]),
    ]);
    assert_eq!(got, vec![dir("d"), file("d/stays", "s"), file("new", "n")]);
}

#[test]
fn an_opaque_directory_keeps_only_its_own_layers_contents() {
    let (got, _) = merged(vec![
        layer(&[
            E::Dir("d"),
            E::File("d/old", "o"),
            E::Dir("d/sub"),
            E::File("d/sub/x", "x"),
            E::File("other", "k"),
        ]),
        zstd::encode_all(
            &layer(&[
                E::Dir("d"),
                E::File("d/.wh..wh..opq", ""),
                E::File("d/new", "n"),
            ])[..],
            1,
        )
        .unwrap(),
    ]);
    assert_eq!(got, vec![dir("d"), file("other", "k"), file("d/new", "n")]);
}

#[test]
fn a_file_over_a_directory_hides_its_contents_and_a_directory_replaces_a_file() {
    let (got, _) = merged(vec![
        layer(&[E::Dir("a"), E::File("a/inside", "i"), E::File("b", "file")]),
        layer(&[E::Sym("a", "elsewhere"), E::Dir("b"), E::File("b/x", "x")]),
    ]);
    assert_eq!(
        got,
        vec![
            ("a".into(), Out::Sym("elsewhere".into())),
            dir("b"),
            file("b/x", "x")
        ]
    );
}

#[test]
fn hard_links_always_find_their_data_before_them() {
    let (got, _) = merged(vec![
        layer(&[
            E::File("a", "old"),
            E::Link("b", "a"),
            E::Link("c", "./a"),
            E::File("kept", "k"),
        ]),
        layer(&[
            E::File("a", "new"),
            E::Link("k2", "kept"),
            E::Link("d", "b"),
        ]),
    ]);
    assert_eq!(
        got,
        vec![
            // `a` was replaced: its first link carries the old data, the next links to it.
            file("b", "old"),
            ("c".into(), Out::Link("b".into())),
            file("kept", "k"),
            file("a", "new"),
            ("k2".into(), Out::Link("kept".into())),
            ("d".into(), Out::Link("b".into())),
        ]
    );
}

#[test]
fn a_link_whose_target_was_whited_out_carries_the_data() {
    let (got, _) = merged(vec![
        layer(&[E::File("a", "data"), E::Link("b", "a")]),
        layer(&[E::File(".wh.a", "")]),
    ]);
    assert_eq!(got, vec![file("b", "data")]);
}

#[test]
fn climbing_paths_and_the_root_entry_are_left_out_and_an_opaque_root_empties_all() {
    let mut bad = layer(&[E::Dir("./"), E::File("ok", "1")]);
    // A `..` path cannot be built through the builder: patch a raw header.
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..9].copy_from_slice(b"../escape");
    h.set_size(0);
    h.set_cksum();
    let end = bad.len() - 1024;
    bad.truncate(end);
    bad.extend_from_slice(h.as_bytes());
    bad.extend_from_slice(&[0u8; 1024]);
    let (got, _) = merged(vec![bad.clone()]);
    assert_eq!(got, vec![file("ok", "1")]);
    let (got, _) = merged(vec![
        bad,
        layer(&[E::File(".wh..wh..opq", ""), E::File("n", "2")]),
    ]);
    assert_eq!(got, vec![file("n", "2")]);
}

#[test]
fn pax_records_other_than_paths_are_kept() {
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([("SCHILY.xattr.user.k", &b"v"[..])])
        .unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_size(1);
    h.set_mode(0o600);
    b.append_data(&mut h, "f", &b"x"[..]).unwrap();
    let long = format!("{}/file", "d".repeat(150));
    let mut h = tar::Header::new_ustar();
    h.set_size(0);
    b.append_data(&mut h, &long, io::empty()).unwrap();
    let data = b.into_inner().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("l");
    std::fs::write(&p, data).unwrap();
    let mut out = Vec::new();
    merge(&[p], dir.path(), &mut out).unwrap();
    let mut a = tar::Archive::new(&out[..]);
    let mut entries = a.entries().unwrap();
    let mut first = entries.next().unwrap().unwrap();
    let xattrs: BTreeMap<String, Vec<u8>> = first
        .pax_extensions()
        .unwrap()
        .unwrap()
        .map(|x| {
            let x = x.unwrap();
            (x.key().unwrap().to_string(), x.value_bytes().to_vec())
        })
        .collect();
    assert_eq!(
        xattrs.get("SCHILY.xattr.user.k").map(Vec::as_slice),
        Some(&b"v"[..])
    );
    assert_eq!(first.header().mode().unwrap(), 0o600);
    let second = entries.next().unwrap().unwrap();
    assert_eq!(second.path().unwrap().to_string_lossy(), long);
}

#[test]
fn a_damaged_layer_fails_with_its_number() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("a");
    std::fs::write(&good, layer(&[E::File("x", "1")])).unwrap();
    let bad = dir.path().join("b");
    let mut gz = gzip(&layer(&[E::File("y", &"z".repeat(5000))]));
    gz.truncate(gz.len() / 2);
    std::fs::write(&bad, gz).unwrap();
    let err = merge(&[good, bad], dir.path(), Vec::new()).unwrap_err();
    assert!(err.to_string().contains("layer 2"), "{err}");
}

#[test]
fn a_layer_without_its_last_padding_and_end_blocks_is_read_whole() {
    let full = layer(&[E::Dir("etc"), E::File("etc/motd", "hello\n")]);
    // Header, header, 6 data bytes: the rest (padding, end-of-archive) cut off.
    let cut = full[..512 * 2 + 6].to_vec();
    let (got, _) = merged(vec![gzip(&cut)]);
    assert_eq!(got, vec![dir("etc"), file("etc/motd", "hello\n")]);
}

#[test]
fn a_layer_that_ends_inside_a_files_data_is_refused() {
    let full = layer(&[E::File("big", &"x".repeat(3000))]);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("l");
    std::fs::write(&p, &full[..512 + 1000]).unwrap();
    let err = merge(&[p], dir.path(), Vec::new()).unwrap_err().to_string();
    assert!(
        err.contains("layer 1") && err.contains("big") && err.contains("2000"),
        "{err}"
    );
}

#[test]
fn a_directory_comes_first_where_it_first_appears_with_its_upper_metadata() {
    let upper = {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o700);
        h.set_size(0);
        b.append_data(&mut h, "etc/", io::empty()).unwrap();
        b.into_inner().unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let (lo, hi) = (dir.path().join("lo"), dir.path().join("hi"));
    std::fs::write(&lo, layer(&[E::Dir("etc"), E::File("etc/a", "1")])).unwrap();
    std::fs::write(&hi, upper).unwrap();
    let mut out = Vec::new();
    merge(&[lo, hi], dir.path(), &mut out).unwrap();
    let mut a = tar::Archive::new(&out[..]);
    let got: Vec<(String, u32)> = a
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let mode = e.header().mode().unwrap();
            (e.path().unwrap().to_string_lossy().into_owned(), mode)
        })
        .collect();
    assert_eq!(got, vec![("etc".into(), 0o700), ("etc/a".into(), 0o644)]);
}
