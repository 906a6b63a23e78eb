//! The merged filesystem of an image from its layers' indexes, as a container sees it.
//!
//! Layers apply bottom first. Within a layer, its opaque markers (`.wh..wh..opq`) and
//! whiteouts (`.wh.NAME`) act first, on lower layers only; then its entries replace
//! what is there (a non-directory replaces a whole subtree; a directory over a
//! directory replaces only its metadata). A hard link takes the data and inode of its
//! target as the merged tree has it at that point, so a later change of the target does
//! not reach it. Parents that no entry declares appear as plain directories.

use std::collections::BTreeMap;

use super::index::{Entry, Kind, LayerIndex};
use super::tar::{overlay_role, show, Overlay};

/// Where a merged path's metadata and data come from: entry `entry` of layer `layer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Source {
    pub layer: usize,
    pub entry: usize,
}

/// One path of the merged tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    /// From an entry (for a hard link: its target's entry, shared with the target).
    Entry(Source),
    /// A parent that no layer declares.
    ImplicitDir,
}

/// The merged tree: every path (relative, the root as the empty path) and its node.
#[derive(Debug, Default)]
pub struct Merged {
    pub paths: BTreeMap<Vec<u8>, Node>,
    /// Entries that could not be applied, with the reason.
    pub problems: Vec<String>,
}

impl Merged {
    /// Applies `layers` (bottom first).
    pub fn new(layers: &[&LayerIndex]) -> Merged {
        let mut m = Merged::default();
        m.paths.insert(Vec::new(), Node::ImplicitDir);
        for l in 0..layers.len() {
            m.apply(layers, l, true);
        }
        m
    }

    /// One layer's own tree, as its tar holds it: whiteout files and opaque markers
    /// are plain entries; a later entry of a name replaces an earlier one.
    pub fn single(layer: &LayerIndex) -> Merged {
        let mut m = Merged::default();
        m.paths.insert(Vec::new(), Node::ImplicitDir);
        m.apply(&[layer], 0, false);
        m
    }

    /// The entry a node stands for (`None` for an implicit directory).
    pub fn entry<'a>(&self, layers: &[&'a LayerIndex], node: Node) -> Option<&'a Entry> {
        match node {
            Node::Entry(s) => Some(&layers[s.layer].entries[s.entry]),
            Node::ImplicitDir => None,
        }
    }

    /// Whether the node at `path` is a directory.
    pub fn is_dir(&self, layers: &[&LayerIndex], path: &[u8]) -> bool {
        match self.paths.get(path) {
            Some(Node::ImplicitDir) => true,
            Some(n) => self.entry(layers, *n).is_some_and(|e| e.kind == Kind::Dir),
            None => false,
        }
    }

    /// The names directly below the directory `dir`, sorted, with their nodes.
    pub fn children<'s>(&'s self, dir: &[u8]) -> impl Iterator<Item = (&'s [u8], Node)> + 's {
        let skip = if dir.is_empty() { 0 } else { dir.len() + 1 };
        self.paths
            .range(child_range(dir))
            .filter(move |(p, _)| !p[skip..].contains(&b'/'))
            .map(move |(p, n)| (&p[skip..], *n))
    }

    fn apply(&mut self, layers: &[&LayerIndex], l: usize, overlay: bool) {
        let layer = layers[l];
        let role = |p: &[u8]| if overlay { overlay_role(p) } else { None };
        // Whiteouts and opaque markers act on lower layers, before this layer's entries.
        for e in layer.entries.iter().filter(|_| overlay) {
            match overlay_role(&e.path) {
                Some(Overlay::Empties(dir)) => self.remove_below(&dir),
                Some(Overlay::Hides(path)) if !path.is_empty() => {
                    self.remove_below(&path);
                    self.paths.remove(&path);
                }
                _ => {}
            }
        }
        for (i, e) in layer.entries.iter().enumerate() {
            if e.path.is_empty() || role(&e.path).is_some() {
                continue;
            }
            let node = match &e.kind {
                Kind::HardLink(target) => match self.paths.get(target) {
                    Some(n @ Node::Entry(_)) if !self.is_dir(layers, target) => *n,
                    _ => {
                        self.problems.push(format!(
                            "layer {}: hard link {} to {}, which is not a file there",
                            l + 1,
                            show(&e.path),
                            show(target)
                        ));
                        continue;
                    }
                },
                _ => Node::Entry(Source { layer: l, entry: i }),
            };
            if e.kind != Kind::Dir || !self.is_dir(layers, &e.path) {
                // A non-directory replaces a whole subtree (and a directory a file).
                self.remove_below(&e.path);
            }
            self.make_parents(layers, &e.path);
            self.paths.insert(e.path.clone(), node);
        }
    }

    /// Makes every parent of `path` a directory: a non-directory in the way gives
    /// way to a plain one.
    fn make_parents(&mut self, layers: &[&LayerIndex], path: &[u8]) {
        let mut end = 0;
        while let Some(i) = path[end..].iter().position(|b| *b == b'/') {
            let parent = &path[..end + i];
            if !self.is_dir(layers, parent) {
                self.remove_below(parent);
                self.paths.insert(parent.to_vec(), Node::ImplicitDir);
            }
            end += i + 1;
        }
    }

    fn remove_below(&mut self, dir: &[u8]) {
        let doomed: Vec<Vec<u8>> = self
            .paths
            .range(child_range(dir))
            .map(|(p, _)| p.clone())
            .collect();
        for p in doomed {
            self.paths.remove(&p);
        }
    }
}

/// The range of paths strictly below `dir`.
fn child_range(dir: &[u8]) -> (std::ops::Bound<Vec<u8>>, std::ops::Bound<Vec<u8>>) {
    use std::ops::Bound::{Excluded, Unbounded};
    if dir.is_empty() {
        return (Excluded(Vec::new()), Unbounded);
    }
    let mut lo = dir.to_vec();
    lo.push(b'/');
    let mut hi = dir.to_vec();
    hi.push(b'/' + 1);
    (Excluded(lo), Excluded(hi))
}

#[cfg(test)]
pub(crate) mod tests;
