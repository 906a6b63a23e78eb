use std::sync::Arc;

use super::*;
use crate::layer::merge::tests::{layer, E};

fn names(t: &Tree, id: Id) -> Vec<String> {
    t.node(id)
        .children
        .iter()
        .map(|c| String::from_utf8_lossy(t.node(*c).name()).into_owned())
        .collect()
}

#[test]
fn directories_list_their_children_in_name_order_with_link_counts() {
    let lower = layer(&[
        E::Dir("etc"),
        E::File("etc/passwd", "root"),
        E::File("etc/b-c", "x"),
        E::Dir("etc/b"),
        E::File("etc/b/inner", "y"),
        E::Link("etc/hard", "etc/passwd"),
        E::File("gone", "z"),
        E::File("usr/bin/sh", "elf"),
    ]);
    let upper = layer(&[E::File(".wh.gone", ""), E::Sym("bin", "usr/bin")]);
    let t = Tree::merged(vec![Arc::new(lower.clone()), Arc::new(upper.clone())]);
    assert_eq!(names(&t, ROOT), ["bin", "etc", "usr"]);
    let etc = t.lookup(b"etc").unwrap();
    assert_eq!(names(&t, etc), ["b", "b-c", "hard", "passwd"]);
    // Two subdirectories below the root (etc, usr), one below etc.
    assert_eq!(t.node(ROOT).nlink, 4);
    assert_eq!(t.node(etc).nlink, 3);
    let passwd = t.lookup(b"etc/passwd").unwrap();
    let hard = t.lookup(b"etc/hard").unwrap();
    assert_eq!(t.node(passwd).nlink, 2);
    assert_eq!(t.node(passwd).node, t.node(hard).node);
    assert_eq!(t.entry(hard).unwrap().path, b"etc/passwd");
    assert_eq!(t.lookup(b"gone"), None);
    // `usr` and `usr/bin` are implicit: directories with no entry and no layer.
    let usr = t.lookup(b"usr").unwrap();
    assert!(t.is_dir(usr) && t.entry(usr).is_none() && t.source(usr).is_none());
    let bin = t.lookup(b"bin").unwrap();
    assert!(!t.is_dir(bin));
    assert_eq!(t.source(bin).unwrap().1.layer, 1);

    // One layer's own tree keeps its whiteout files as plain entries.
    let own = Tree::single(Arc::new(upper));
    assert_eq!(names(&own, ROOT), [".wh.gone", "bin"]);
    assert_eq!(own.len(), 3);
}

/// A tar whose names and link targets are written as given (no checks).
fn raw_tar(entries: &[(&str, ::tar::EntryType, &str)]) -> Vec<u8> {
    let mut b = ::tar::Builder::new(Vec::new());
    for (name, kind, arg) in entries {
        let mut h = ::tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        let data = if *kind == ::tar::EntryType::Regular {
            arg.as_bytes()
        } else {
            b""
        };
        h.set_size(data.len() as u64);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        if *kind != ::tar::EntryType::Regular {
            gnu.linkname[..arg.len()].copy_from_slice(arg.as_bytes());
        }
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn hostile_entries_stay_inside_the_tree_and_the_rest_stands() {
    use ::tar::EntryType::{Directory, Link, Regular, Symlink};
    let lower = raw_tar(&[
        ("keep", Regular, "kept"),
        ("gone/inside", Regular, "x"),
        ("dir/x", Regular, "x"),
    ]);
    let upper = raw_tar(&[
        ("../escape", Regular, "out"),
        ("a/../../b", Regular, "out"),
        ("/abs/file", Regular, "absolute"),
        ("dup", Regular, "one"),
        ("dup", Regular, "two"),
        ("hl-missing", Link, "nowhere"),
        ("hl-later", Link, "later"),
        ("hl-out", Link, "../keep"),
        ("later", Regular, "late"),
        (".wh.", Regular, ""),
        (".wh..", Regular, ""),
        (".wh...", Regular, ""),
        ("loop1", Symlink, "loop2"),
        ("loop2", Symlink, "loop1"),
        ("up", Symlink, "../../../../etc/passwd"),
        ("dir", Regular, "a file over a directory"),
        ("gone/.wh..wh..opq", Regular, ""),
        ("gone", Directory, ""),
    ]);
    let ix = |t: &[u8]| Arc::new(crate::layer::index::build(t, 1 << 20).unwrap());
    let (lower, upper) = (ix(&lower), ix(&upper));
    assert_eq!(upper.left_out.len(), 3, "{:?}", upper.left_out);
    let t = Tree::merged(vec![lower, upper]);
    assert_eq!(
        names(&t, ROOT),
        ["abs", "dir", "dup", "gone", "keep", "later", "loop1", "loop2", "up"]
    );
    let file = |p: &str| t.entry(t.lookup(p.as_bytes()).unwrap()).unwrap().clone();
    // The later of two entries of one name wins; a file replaces a directory's subtree.
    assert_eq!(file("dup").size, 3);
    assert_eq!(file("dir").kind, Kind::File);
    assert_eq!(t.lookup(b"dir/x"), None);
    assert_eq!(file("abs/file").size, 8);
    assert!(names(&t, t.lookup(b"gone").unwrap()).is_empty());
    // Links to nothing, to what comes later, or out of the tree are reported, not made.
    assert_eq!(t.problems.len(), 2, "{:?}", t.problems);
    // Symbolic links are data: a loop or a climb is shown as it is, never followed.
    assert_eq!(
        file("up").kind,
        Kind::Symlink(b"../../../../etc/passwd".to_vec())
    );
}
