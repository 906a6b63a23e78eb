//! The one integration-test binary: the harness plus every test module.

mod auth_tests;
mod client_cert_tests;
mod client_tests;
mod copy_docker;
mod copy_matrix;
mod crash_tests;
mod exit_codes;
mod fake;
mod faults;
mod harness;
mod harness_tests;
mod inspect_tests;
mod login_tests;
mod mount_tests;
mod oneliner_tests;
mod proxy_faults;
mod signing_tests;
mod sync_tests;
mod ux_tests;
