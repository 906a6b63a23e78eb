//! The one integration-test binary: the harness plus every test module.

mod harness;
mod harness_tests;
mod fake;
mod faults;
