//! Walking layer tars: entry paths made relative and plain, the overlay meaning of
//! whiteout entries, and tolerance for layers whose writer stopped right after the
//! last file's data.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

/// The relative path of an entry without `.` parts and slashes at either end (empty
/// for the root); `None` when it climbs with `..`.
pub fn normalize(raw: &[u8]) -> Option<Vec<u8>> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in raw.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return None,
            p => parts.push(p),
        }
    }
    Some(parts.join(&b'/'))
}

/// `parent/name` (`name` when `parent` is the root).
pub fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    if parent.is_empty() {
        return name.to_vec();
    }
    [parent, name].join(&b'/')
}

/// A path's bytes for messages.
pub fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What a whiteout entry does to lower layers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Overlay {
    /// `.wh.NAME`: hides this path (and all below it).
    Hides(Vec<u8>),
    /// `.wh..wh..opq`: hides everything below this directory.
    Empties(Vec<u8>),
}

/// The overlay meaning of the normalized `path`, when it is a whiteout.
pub fn overlay_role(path: &[u8]) -> Option<Overlay> {
    let (parent, name) = match path.iter().rposition(|b| *b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&path[..0], path),
    };
    if name == b".wh..wh..opq" {
        return Some(Overlay::Empties(parent.to_vec()));
    }
    name.strip_prefix(b".wh.")
        .map(|hidden| Overlay::Hides(join(parent, hidden)))
}

/// Calls `f` with every entry of the tar stream `decoded` and its position.
///
/// Some writers end a layer right after the last file's data, without its padding
/// or the end-of-archive blocks; those are supplied. A stream that ends inside an
/// entry's data is an error naming the entry.
pub fn walk<R: Read>(
    decoded: R,
    mut f: impl FnMut(usize, &mut tar::Entry<'_, Completed<R>>) -> io::Result<()>,
) -> io::Result<()> {
    let end = Rc::new(Cell::new(None));
    let reader = Completed {
        inner: decoded,
        pos: 0,
        end: end.clone(),
        zeros: 0,
    };
    let mut archive = tar::Archive::new(reader);
    let mut last: Option<(u64, Vec<u8>)> = None;
    let mut entries = || -> io::Result<()> {
        for (index, entry) in archive.entries()?.enumerate() {
            let mut entry = entry?;
            last = Some((
                entry.raw_file_position() + entry.size(),
                entry.path_bytes().into_owned(),
            ));
            f(index, &mut entry)?;
        }
        Ok(())
    };
    let res = entries();
    // A cut inside an entry's data is named as such, whatever the reader then met.
    match (end.get(), last) {
        (Some(end), Some((data_end, name))) if end < data_end => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "the layer ends inside the data of {} ({} of its bytes missing)",
                show(&name),
                data_end - end
            ),
        )),
        _ => res,
    }
}

/// A tar stream followed, once it ends, by the zeros that complete its last block
/// and the end-of-archive blocks; `end` records where the real bytes stopped.
pub struct Completed<R> {
    inner: R,
    pos: u64,
    end: Rc<Cell<Option<u64>>>,
    zeros: u64,
}

impl<R: Read> Read for Completed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.end.get().is_none() {
            let n = self.inner.read(buf)?;
            if n > 0 || buf.is_empty() {
                self.pos += n as u64;
                return Ok(n);
            }
            self.end.set(Some(self.pos));
            self.zeros = (512 - self.pos % 512) % 512 + 1024;
        }
        let n = buf.len().min(self.zeros as usize);
        buf[..n].fill(0);
        self.zeros -= n as u64;
        Ok(n)
    }
}
