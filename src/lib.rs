//! scry: inspect, copy and mount container images.
//!
//! Layers (dependencies point down): `cli` → `inspect` → `transport` → `registry` /
//! `auth` → `manifest` / `reference` → `error`. See docs/architecture.md.
pub mod auth;
pub mod cache;
pub mod cli;
pub mod copy;
pub mod digest;
pub mod error;
pub mod export;
pub mod fs;
#[doc(hidden)]
pub mod fuzzing;
pub mod goparse;
pub mod inspect;
pub mod layer;
pub mod manifest;
pub mod mount;
pub mod policy;
pub mod reference;
pub mod registries_conf;
pub mod registry;
pub mod signing;
pub mod sync;
pub mod sysroots;
pub mod template;
pub mod transport;

pub use error::{Error, ErrorKind, Result, ResultExt};
pub mod fuse;
