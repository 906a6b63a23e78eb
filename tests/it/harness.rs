//! The integration-test harness: the independent oracle side of every CLI test.
//! Nothing here uses the scry library.
//!
//! - [`registry`]: real `docker-registry` instances (plain, TLS, htpasswd, token).
//! - [`tls`]: certificates generated at test time.
//! - [`token`]: the Bearer-token server for token-auth registries.
//! - [`image`]: deterministic in-memory images (layers, configs, manifests, indexes).
//! - [`fixtures`]: the standard fixture set and a shared read-only registry.
//! - [`push`]: a Distribution API client to seed and inspect registries.
//! - [`command`]: running `scry` / `skopeo` with a timeout and an isolated HOME.
// Not every test module uses every helper or re-export.
#![allow(dead_code, unused_imports)]

pub mod command;
pub mod faultproxy;
pub mod fixtures;
pub mod http;
pub mod image;
pub mod push;
pub mod registry;
pub mod tls;
pub mod token;

pub use command::{run, run_with_timeout, scry, skopeo, spawn_owned, CmdOutput, Home};
pub use fixtures::{shared_registry, Fixtures, ImageFixture, IndexFixture};
pub use image::{Entry, Format, Image, ImageSpec, Index, Platform};
pub use push::Client;
pub use registry::{Auth, Registry, RegistryBuilder, Tls};
