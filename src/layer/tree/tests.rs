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
