//! Image transports. For now the `docker://` source used by the read-only commands; the
//! `ImageSource`/`ImageDestination` traits and the other transports join here.
pub mod docker;
