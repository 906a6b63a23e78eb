//! The inode table: which inode number a name has and what node it stands for.
//!
//! Invariants:
//! - An inode number is never reused. A key ([`Key`]) keeps its number for the life
//!   of the mount, so the same path always gives the same inode, and a forgotten node
//!   that is looked up again comes back with its old number.
//! - Directories are keyed by path (parent inode + name), never shared between paths,
//!   so the kernel never sees a directory under two names. Files whose content is
//!   fixed by a digest are keyed by that content and may appear under many paths (as
//!   hard links do), which lets the page cache hold their bytes once.
//! - `lookups` counts the kernel's references (lookup/create add one, forget removes
//!   n); at zero the node is dropped, the number stays reserved for its key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::error::{FsError, FsResult};
use super::node::Node;
use super::types::ROOT_INO;

/// What identifies an inode.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// A name in a directory.
    Child(u64, String),
    /// A file fixed by content: `digest` names the image or blob, `name` the role.
    Content {
        registry: String,
        repo: String,
        digest: String,
        name: String,
    },
}

struct Entry {
    node: Arc<Node>,
    parent: u64,
    /// The name it was last looked up by in `parent`.
    name: String,
    lookups: u64,
}

struct Table {
    next: u64,
    by_key: HashMap<Key, u64>,
    nodes: HashMap<u64, Entry>,
}

pub(crate) struct Inodes {
    table: Mutex<Table>,
}

impl Table {
    fn number(&mut self, key: &Key) -> u64 {
        if let Some(ino) = self.by_key.get(key) {
            return *ino;
        }
        let ino = self.next;
        self.next += 1;
        self.by_key.insert(key.clone(), ino);
        ino
    }
}

impl Inodes {
    pub fn new() -> Inodes {
        let mut nodes = HashMap::new();
        nodes.insert(
            ROOT_INO,
            Entry {
                node: Arc::new(Node::Root),
                parent: ROOT_INO,
                name: String::new(),
                lookups: 1,
            },
        );
        Inodes {
            table: Mutex::new(Table {
                next: ROOT_INO + 1,
                by_key: HashMap::new(),
                nodes,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The node of `ino` and its parent's inode.
    pub fn get(&self, ino: u64) -> FsResult<(Arc<Node>, u64)> {
        self.lock()
            .nodes
            .get(&ino)
            .map(|e| (e.node.clone(), e.parent))
            .ok_or_else(|| FsError::not_found(format!("inode {ino} is not known")))
    }

    /// The inode number of `key`, reserving one if needed (for `readdir`, which does
    /// not add a kernel reference).
    pub fn number(&self, key: &Key) -> u64 {
        self.lock().number(key)
    }

    /// Records a kernel reference to `key` as `node` (a path-keyed node is replaced by
    /// the fresher one; a content-keyed node is kept). Returns the inode and its node.
    pub fn link(&self, key: &Key, node: Node, parent: u64, name: &str) -> (u64, Arc<Node>) {
        let mut t = self.lock();
        let ino = t.number(key);
        let replace = matches!(key, Key::Child(..));
        let entry = t.nodes.entry(ino).or_insert_with(|| Entry {
            node: Arc::new(Node::Root),
            parent,
            name: String::new(),
            lookups: 0,
        });
        if entry.lookups == 0 || replace {
            entry.node = Arc::new(node);
            entry.parent = parent;
            entry.name = name.to_string();
        }
        entry.lookups += 1;
        (ino, entry.node.clone())
    }

    /// Drops `n` kernel references; the node goes when none are left.
    pub fn forget(&self, ino: u64, n: u64) {
        if ino == ROOT_INO {
            return;
        }
        let mut t = self.lock();
        if let Some(e) = t.nodes.get_mut(&ino) {
            e.lookups = e.lookups.saturating_sub(n);
            if e.lookups == 0 {
                t.nodes.remove(&ino);
            }
        }
    }

    /// Releases `key`'s number so that a new file of that name gets a new inode (the
    /// old node lives on while the kernel still references it).
    pub fn unkey(&self, key: &Key) {
        self.lock().by_key.remove(key);
    }

    /// The inodes the kernel knows whose content is blob `digest` (any blob: `None`).
    pub fn showing_blob(&self, digest: Option<&str>) -> Vec<u64> {
        self.lock()
            .nodes
            .iter()
            .filter(|(_, e)| match (e.node.blob_digest(), digest) {
                (Some(d), Some(want)) => d == want,
                (Some(_), None) => true,
                (None, _) => false,
            })
            .map(|(ino, _)| *ino)
            .collect()
    }

    /// The path of `ino` from the mount's root (`/REGISTRY/REPO/TAG/…`), by the names
    /// it and its parents were last looked up by; `inode N` when it is not known.
    pub fn path_of(&self, ino: u64) -> String {
        let t = self.lock();
        let mut parts = Vec::new();
        let mut at = ino;
        while at != ROOT_INO {
            match t.nodes.get(&at) {
                // A bounded walk: parents always exist while a child is referenced.
                Some(e) if parts.len() < 256 => {
                    parts.push(e.name.as_str());
                    at = e.parent;
                }
                _ => return format!("inode {ino}"),
            }
        }
        parts.reverse();
        format!("/{}", parts.join("/"))
    }

    /// (inodes with a node, numbers handed out).
    pub fn counts(&self) -> (usize, u64) {
        let t = self.lock();
        (t.nodes.len(), t.next - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_stable_and_nodes_dropped_at_zero() {
        let t = Inodes::new();
        let k = Key::Child(ROOT_INO, "quay.io".into());
        let reg = || Node::Registry {
            registry: "quay.io".into(),
        };
        let n0 = t.number(&k);
        let (ino, _) = t.link(&k, reg(), ROOT_INO, "quay.io");
        assert_eq!(ino, n0);
        t.link(&k, reg(), ROOT_INO, "quay.io");
        t.forget(ino, 1);
        assert!(t.get(ino).is_ok());
        t.forget(ino, 1);
        assert!(t.get(ino).is_err());
        let (again, _) = t.link(&k, reg(), ROOT_INO, "quay.io");
        assert_eq!(again, ino);
        let other = t.number(&Key::Child(ROOT_INO, "ghcr.io".into()));
        assert_ne!(other, ino);
        t.unkey(&k);
        assert_ne!(t.number(&k), ino);
        t.forget(ROOT_INO, 10);
        assert!(t.get(ROOT_INO).is_ok());
    }

    #[test]
    fn paths_follow_the_names_looked_up() {
        let t = Inodes::new();
        let reg = Node::Registry {
            registry: "quay.io".into(),
        };
        let (r, _) = t.link(
            &Key::Child(ROOT_INO, "quay.io".into()),
            reg,
            ROOT_INO,
            "quay.io",
        );
        let repo = Node::Repo {
            registry: "quay.io".into(),
            path: "a".into(),
        };
        let (a, _) = t.link(&Key::Child(r, "a".into()), repo, r, "a");
        assert_eq!(t.path_of(ROOT_INO), "/");
        assert_eq!(t.path_of(a), "/quay.io/a");
        assert_eq!(t.path_of(999), "inode 999");
        t.forget(r, 1);
        assert_eq!(t.path_of(a), format!("inode {a}"));
    }
}
