//! Image layers as random-access data, below the mount's filesystem core: this is
//! where compression details live, so `fs/` never sees a deflate block.
//!
//! - [`access`]: reads at any offset of a layer's tar stream through its index, from
//!   a source of blob byte ranges; whole files checked against their indexed digest.
//! - [`files`]: files read from layers, kept decompressed and verified by their
//!   SHA-256 (in memory when small, in unlinked disk files when not), within budgets.
//! - [`frames`]: frame starts of zstd layers of many frames, where reads can begin.
//! - [`gzip`]: checkpoints into ordinary gzip streams (one sequential pass records
//!   where a later read can start) and reads from them.
//! - [`index`]: a layer's index (entries, data offsets, per-file SHA-256, gzip
//!   checkpoints) from one pass over the blob, and its checksummed on-disk form.
//! - [`merge`]: the merged tree of an image's layers (whiteouts, opaque directories,
//!   hard links resolved against the tree so far).
//! - [`store`]: indexes kept on disk by layer digest (atomic writes; unsound files
//!   removed, never used).
//! - [`tree`]: a browsable tree over indexes (children by directory, link counts),
//!   of an image's merged filesystem or of one layer.
//! - [`tar`]: walking layer tars: plain relative paths, whiteouts' overlay meaning,
//!   layers cut after their last file's data.

pub mod access;
pub mod files;
pub mod frames;
pub mod gzip;
pub mod index;
pub mod merge;
pub mod store;
pub mod tar;
pub mod tree;
