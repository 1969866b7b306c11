//! The `hearth` command: server and administration CLI.

fn main() -> std::process::ExitCode {
    hearth::cli::main()
}
