//! scry: inspect, copy and mount container images.
//!
//! Layers (dependencies point down): `cli` → `copy` → `transport` → `registry` / `auth`
//! → `manifest` / `reference` → `error`. See docs/architecture.md.
pub mod auth;
pub mod error;
pub mod manifest;

pub use error::{Error, ErrorKind, Result, ResultExt};
pub mod registry;
pub mod cli;
pub mod inspect;
pub mod transport;
