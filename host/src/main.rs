//! The `hearth` command: server and administration CLI.

/// mimalloc instead of the system allocator: request handling allocates many small,
/// short-lived buffers on two or more threads, where glibc's malloc spent about 3–4 % of
/// the token endpoint's CPU (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // Before the first thread and the first large allocation (see the function).
    hearth::allocator::tune();
    hearth::cli::main()
}
