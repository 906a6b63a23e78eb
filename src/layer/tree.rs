//! A browsable tree over layer indexes: each directory knows its children (sorted by
//! name), each path its node, each file how many paths share it (hard links). Built
//! once from a [`Merged`] tree, either an image's merged filesystem or one layer's
//! own tree, and shared read-only afterwards.

use std::collections::HashMap;
use std::sync::Arc;

use super::index::{Entry, Kind, LayerIndex};
use super::merge::{Merged, Node, Source};

/// Number of a node in a [`Tree`]; the root is [`ROOT`].
pub type Id = u32;

/// The root directory's id.
pub const ROOT: Id = 0;

/// One path of the tree.
#[derive(Debug)]
pub struct TreeNode {
    pub path: Vec<u8>,
    pub node: Node,
    /// Sorted by name (directories only).
    pub children: Vec<Id>,
    /// Paths sharing this node's entry (hard links), or for a directory 2 plus its
    /// subdirectories.
    pub nlink: u32,
}

impl TreeNode {
    /// The last component of the path (empty for the root).
    pub fn name(&self) -> &[u8] {
        match self.path.iter().rposition(|b| *b == b'/') {
            Some(i) => &self.path[i + 1..],
            None => &self.path,
        }
    }
}

/// See the module documentation.
#[derive(Debug)]
pub struct Tree {
    layers: Vec<Arc<LayerIndex>>,
    nodes: Vec<TreeNode>,
    by_path: HashMap<Vec<u8>, Id>,
    /// Entries that could not be placed (from the merge), with the reason.
    pub problems: Vec<String>,
}

impl Tree {
    /// The merged filesystem of `layers` (bottom first).
    pub fn merged(layers: Vec<Arc<LayerIndex>>) -> Tree {
        let refs: Vec<&LayerIndex> = layers.iter().map(|l| &**l).collect();
        let merged = Merged::new(&refs);
        Tree::from_merged(layers, merged)
    }

    /// The tree of one layer as its tar holds it (whiteout files visible).
    pub fn single(layer: Arc<LayerIndex>) -> Tree {
        let merged = Merged::single(&layer);
        Tree::from_merged(vec![layer], merged)
    }

    fn from_merged(layers: Vec<Arc<LayerIndex>>, merged: Merged) -> Tree {
        let mut nodes: Vec<TreeNode> = Vec::with_capacity(merged.paths.len());
        let mut by_path = HashMap::with_capacity(merged.paths.len());
        let mut shared: HashMap<Source, u32> = HashMap::new();
        // Parents sort before their children, and siblings in name order, so one
        // pass in path order finds every parent already placed.
        for (path, node) in merged.paths {
            let id = nodes.len() as Id;
            if !path.is_empty() {
                let parent = match path.iter().rposition(|b| *b == b'/') {
                    Some(i) => &path[..i],
                    None => &[][..],
                };
                if let Some(&p) = by_path.get(parent) {
                    nodes[p as usize].children.push(id);
                }
            }
            if let Node::Entry(s) = node {
                *shared.entry(s).or_default() += 1;
            }
            by_path.insert(path.clone(), id);
            nodes.push(TreeNode {
                path,
                node,
                children: Vec::new(),
                nlink: 1,
            });
        }
        let mut tree = Tree {
            layers,
            nodes,
            by_path,
            problems: merged.problems,
        };
        for id in 0..tree.nodes.len() {
            let nlink = if tree.is_dir(id as Id) {
                let subdirs = tree.nodes[id]
                    .children
                    .iter()
                    .filter(|c| tree.is_dir(**c))
                    .count();
                2 + subdirs as u32
            } else {
                match tree.nodes[id].node {
                    Node::Entry(s) => shared.get(&s).copied().unwrap_or(1),
                    Node::ImplicitDir => 1,
                }
            };
            tree.nodes[id].nlink = nlink;
        }
        tree
    }

    pub fn node(&self, id: Id) -> &TreeNode {
        &self.nodes[id as usize]
    }

    /// The node at `path` (relative; the root is the empty path).
    pub fn lookup(&self, path: &[u8]) -> Option<Id> {
        self.by_path.get(path).copied()
    }

    /// The entry node `id` stands for (`None` for a directory no layer declares).
    pub fn entry(&self, id: Id) -> Option<&Entry> {
        match self.node(id).node {
            Node::Entry(s) => Some(&self.layers[s.layer].entries[s.entry]),
            Node::ImplicitDir => None,
        }
    }

    /// The layer that supplied node `id`, and the entry's place in it.
    pub fn source(&self, id: Id) -> Option<(&Arc<LayerIndex>, Source)> {
        match self.node(id).node {
            Node::Entry(s) => Some((&self.layers[s.layer], s)),
            Node::ImplicitDir => None,
        }
    }

    pub fn is_dir(&self, id: Id) -> bool {
        self.entry(id).is_none_or(|e| e.kind == Kind::Dir)
    }

    /// Number of paths.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

#[cfg(test)]
mod tests;
