//! Image layers as random-access data, below the mount's filesystem core: this is
//! where compression details live, so `fs/` never sees a deflate block.
//!
//! - [`gzip`]: checkpoints into ordinary gzip streams (one sequential pass records
//!   where a later read can start) and reads from them.
//! - [`index`]: a layer's index (entries, data offsets, per-file SHA-256, gzip
//!   checkpoints) from one pass over the blob, and its checksummed on-disk form.
//! - [`merge`]: the merged tree of an image's layers (whiteouts, opaque directories,
//!   hard links resolved against the tree so far).
//! - [`tar`]: walking layer tars: plain relative paths, whiteouts' overlay meaning,
//!   layers cut after their last file's data.

pub mod gzip;
pub mod index;
pub mod merge;
pub mod tar;
