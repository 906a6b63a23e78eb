//! scry: inspect, copy and mount container images.
//!
//! Layers (dependencies point down): `cli` → `copy` → `transport` → `registry` / `auth`
//! → `manifest` / `reference` → `error`. See docs/architecture.md.
pub mod error;
pub mod reference;
pub mod template;

pub use error::{Error, ErrorKind, Result, ResultExt};
