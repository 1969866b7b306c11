//! `hearth-child`: the `hearth` command, built with the tests so that a test can run a
//! server as a process of its own (and kill it: tests/tests/bulk.rs).

fn main() -> std::process::ExitCode {
    hearth::cli::main()
}
