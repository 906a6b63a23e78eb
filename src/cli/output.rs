//! Writing results to stdout. A closed pipe (`scry inspect … | head`) is not an error.

use std::io::Write;

use crate::error::{Error, Result};

pub fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::Io(e).context("writing to standard output")),
    }
}
