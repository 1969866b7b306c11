//! `hearth plugin new` where a plugin author stands: the released binary, no Hearth source
//! tree. (An integration test of the host crate, so cargo builds the `hearth` binary it
//! runs.)

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the host sits in the workspace")
        .to_path_buf()
}

/// A plugin author with the released binary and no Hearth source tree: the binary is copied
/// out of the workspace, the workspace is hidden under an empty tmpfs in a private mount
/// namespace (`unshare -m`, as root), and there `hearth plugin new` scaffolds a crate that
/// passes its own tests, builds to a component, and passes `hearth plugin check` against
/// the host's contract.
#[test]
fn a_scaffolded_plugin_builds_and_passes_its_own_tests_without_the_source_tree() {
    let scratch =
        std::env::temp_dir().join(format!("hearth-scaffold-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(scratch.join("plugins")).unwrap();
    let built = Path::new(env!("CARGO_BIN_EXE_hearth"));
    let binary = scratch.join("hearth");
    std::fs::copy(built, &binary).unwrap();
    // The workspace's lock file pins the same dependency versions, so nothing is fetched.
    std::fs::copy(workspace().join("Cargo.lock"), scratch.join("Cargo.lock")).unwrap();
    // Kept between runs (outside the hidden tree) so later runs build in seconds.
    let target = std::env::temp_dir().join("hearth-scaffold-target");
    let script = r#"set -e
mount -t tmpfs hidden "$WORKSPACE"
test -z "$(ls -A "$WORKSPACE")"
"$SCRATCH/hearth" plugin new lab-result --dir "$SCRATCH/plugins"
cd "$SCRATCH/plugins/lab-result"
cp "$SCRATCH/Cargo.lock" Cargo.lock
cargo test --offline --quiet
cargo build --offline --quiet --release --target wasm32-wasip2
"$SCRATCH/hearth" --data-dir "$SCRATCH/data" plugin check "$CARGO_TARGET_DIR/wasm32-wasip2/release/hearth_plugin_lab_result.wasm"
"#;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let cargo_dir = Path::new(&cargo)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let path = format!(
        "{}:{}",
        cargo_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script])
        .env("WORKSPACE", workspace())
        .env("SCRATCH", &scratch)
        .env("CARGO_TARGET_DIR", &target)
        .env("PATH", path)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("CARGO")
        .output()
        .expect("running unshare (util-linux)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "scaffolding without the source tree failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("2 passed"), "{stdout}");
    let contract = hearth::plugins::tooling::sdk_contract();
    assert!(
        stdout.contains(&format!("contract  hearth:plugin@{contract}")),
        "{stdout}"
    );
    let manifest = std::fs::read_to_string(scratch.join("plugins/lab-result/Cargo.toml")).unwrap();
    assert!(
        manifest.contains(&format!("path = \"../hearth-sdk-{contract}/sdk\"")),
        "{manifest}"
    );
    assert!(
        !manifest.contains(&workspace().display().to_string()),
        "{manifest}"
    );
    std::fs::remove_dir_all(scratch).unwrap();
}
