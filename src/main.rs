//! The `scry` binary: everything happens in the library's `cli::main`, which returns the
//! exit code (0 ok, 1 error, 2 image not found).

fn main() {
    std::process::exit(scry::cli::main());
}
