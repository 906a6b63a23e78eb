//! Image names: the docker reference grammar ([`DockerReference`]) and skopeo's
//! `transport:details` image names ([`ImageName`]).
//!
//! Everything here is pure parsing: no file is opened and no registry is contacted, so a
//! name that parses may still fail later (a missing directory, an unknown tag).
//!
//! Compatibility target: the reference rules of containers/image as used by skopeo
//! (docker's `ParseNormalizedNamed`, the OCI layout `path[:name|:@index]` split, the
//! docker-archive `path[:reference|:@index]` split). Where docker's grammar accepts a name
//! that later resolves to an empty registry host (e.g. `local_host.com/a`), this module
//! rejects it instead.

mod digest;
mod docker;
mod image_name;

pub use digest::{is_valid_digest, validate_digest};
pub use docker::{DockerReference, DEFAULT_REGISTRY, DEFAULT_TAG, DOCKER_HUB_API_HOST};
pub use image_name::{ImageName, Transport};
