//! The one integration-test binary: the harness plus every test module.

mod fake;
mod faults;
mod harness;
mod harness_tests;
mod inspect_tests;
mod auth_tests;
mod login_tests;
