use std::io;

use super::*;
use crate::layer::index::{build, DEFAULT_SPAN};

/// One entry of a test layer.
pub(crate) enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a str),
    Link(&'a str, &'a str),
    Sym(&'a str, &'a str),
}

pub(crate) fn layer(entries: &[E]) -> LayerIndex {
    let mut b = ::tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = ::tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(0);
        match e {
            E::Dir(p) => {
                h.set_entry_type(::tar::EntryType::Directory);
                b.append_data(&mut h, p, io::empty()).unwrap();
            }
            E::File(p, data) => {
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, data.as_bytes()).unwrap();
            }
            E::Link(p, t) => {
                h.set_entry_type(::tar::EntryType::Link);
                b.append_link(&mut h, p, t).unwrap();
            }
            E::Sym(p, t) => {
                h.set_entry_type(::tar::EntryType::Symlink);
                b.append_link(&mut h, p, t).unwrap();
            }
        }
    }
    build(&b.into_inner().unwrap()[..], DEFAULT_SPAN).unwrap()
}

/// The merged tree as `path kind [layer:data]` lines.
fn tree(layers: &[LayerIndex]) -> Vec<String> {
    let refs: Vec<&LayerIndex> = layers.iter().collect();
    let m = Merged::new(&refs);
    m.paths
        .iter()
        .filter(|(p, _)| !p.is_empty())
        .map(|(p, n)| {
            let p = show(p);
            match (n, m.entry(&refs, *n)) {
                (Node::Entry(s), Some(e)) => match &e.kind {
                    Kind::Dir => format!("{p}/ {}", s.layer),
                    Kind::File => format!("{p} {}:{}", s.layer, e.size),
                    Kind::Symlink(t) => format!("{p} -> {}", show(t)),
                    k => format!("{p} {k:?}"),
                },
                _ => format!("{p}/ implicit"),
            }
        })
        .collect()
}

#[test]
fn whiteouts_opaque_dirs_and_replacements_follow_the_overlay_rules() {
    let got = tree(&[
        layer(&[
            E::Dir("d"),
            E::File("d/gone", "x"),
            E::Dir("d/sub"),
            E::File("d/sub/deep", "x"),
            E::File("d/stays", "ss"),
            E::Dir("o"),
            E::File("o/old", "o"),
            E::Dir("a"),
            E::File("a/inside", "i"),
            E::File("b", "file"),
            E::File("x", "1"),
            E::Dir("sub"),
            E::File("sub/x", "1"),
        ]),
        layer(&[
            E::File("d/.wh.gone", ""),
            E::File("d/.wh.sub", ""),
            // Opaque wherever it stands in the layer; its own entries stay.
            E::File("o/new", "nn"),
            E::File("o/.wh..wh..opq", ""),
            E::Sym("a", "elsewhere"),
            E::Dir("b"),
            E::File("b/x", "xxx"),
            // A whiteout hides lower layers only, not its own layer's file.
            E::File("n", "n"),
            E::File(".wh.n", ""),
            // Root-level .wh.x hides only /x.
            E::File(".wh.x", ""),
        ]),
    ]);
    assert_eq!(
        got,
        vec![
            "a -> elsewhere",
            "b/ 1",
            "b/x 1:3",
            "d/ 0",
            "d/stays 0:2",
            "n 1:1",
            "o/ 0",
            "o/new 1:2",
            "sub/ 0",
            "sub/x 0:1",
        ]
    );
}

#[test]
fn a_directory_deleted_then_recreated_hides_what_it_held() {
    let got = tree(&[
        layer(&[E::Dir("d"), E::File("d/old", "o")]),
        layer(&[E::File(".wh.d", "")]),
        layer(&[E::Dir("d"), E::File("d/new", "n")]),
    ]);
    assert_eq!(got, vec!["d/ 2", "d/new 2:1"]);
}

#[test]
fn hard_links_share_the_target_as_it_was_when_linked() {
    let layers = [
        layer(&[E::File("a", "old"), E::Link("b", "a")]),
        layer(&[
            E::File("a", "newer"),
            E::Link("c", "a"),
            E::Link("bad", "missing"),
        ]),
    ];
    let refs: Vec<&LayerIndex> = layers.iter().collect();
    let m = Merged::new(&refs);
    let node = |p: &str| m.paths[p.as_bytes()];
    assert_eq!(node("b"), Node::Entry(Source { layer: 0, entry: 0 }));
    assert_eq!(node("a"), Node::Entry(Source { layer: 1, entry: 0 }));
    assert_eq!(node("c"), node("a"));
    assert!(!m.paths.contains_key(&b"bad"[..]));
    assert!(
        m.problems.iter().any(|p| p.contains("bad")),
        "{:?}",
        m.problems
    );
}

#[test]
fn undeclared_parents_become_directories_and_children_list_one_level() {
    let layers = [layer(&[
        E::File("x/y/z", "1"),
        E::File("x/w", "2"),
        E::File("top", "3"),
    ])];
    let refs: Vec<&LayerIndex> = layers.iter().collect();
    let m = Merged::new(&refs);
    assert_eq!(m.paths[&b"x/y"[..]], Node::ImplicitDir);
    assert!(m.is_dir(&refs, b"x"));
    let names = |d: &[u8]| -> Vec<String> { m.children(d).map(|(n, _)| show(n)).collect() };
    assert_eq!(names(b""), vec!["top", "x"]);
    assert_eq!(names(b"x"), vec!["w", "y"]);
    assert_eq!(names(b"x/y"), vec!["z"]);
    // A file below a file: the lower one gives way to a directory.
    let layers = [layer(&[E::File("f", "1")]), layer(&[E::File("f/g", "2")])];
    let refs: Vec<&LayerIndex> = layers.iter().collect();
    let m = Merged::new(&refs);
    assert!(m.is_dir(&refs, b"f"));
}
