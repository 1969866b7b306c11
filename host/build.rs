//! Builds the plugins (every crate under `plugins/` and `tests/plugins/`) as WebAssembly
//! components, so `cargo run` and `cargo test` need nothing else. Adds the
//! `wasm32-wasip2` target with rustup when it is missing.
//!
//! The inner cargo gets its own target directory (`<target>/plugins`): the outer build
//! holds the lock on the workspace's. Finished components are copied to
//! `<target>/plugins/dist/<name>.wasm`, whose path the host is compiled with.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let host_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = host_dir
        .parent()
        .expect("the host crate sits in the workspace")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    // OUT_DIR is <target>/<profile>/build/<crate>-<hash>/out (or with a target triple).
    let target_dir = out_dir
        .ancestors()
        .find(|p| p.join("CACHEDIR.TAG").exists())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| root.join("target"));
    let plugin_target = target_dir.join("plugins");
    let dist = plugin_target.join("dist");

    // `migrations` too: `sqlx::migrate!` embeds the folder, and a new file in it must
    // rebuild the host.
    for dir in ["wit", "sdk", "plugins", "tests/plugins", "migrations"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        root.join("Cargo.lock").display()
    );
    println!("cargo:rustc-env=HEARTH_PLUGIN_DIR={}", dist.display());

    let crates = plugin_crates(&root);
    if crates.is_empty() {
        return;
    }
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    ensure_target();
    let mut command = Command::new(&cargo);
    command
        .current_dir(&root)
        .args(["build", "--profile", "plugin", "--target", TARGET])
        .env("CARGO_TARGET_DIR", &plugin_target);
    for (package, _) in &crates {
        command.args(["-p", package]);
    }
    // What the outer build set for the host must not leak into the wasm build.
    for name in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
        "RUSTC_WRAPPER",
    ] {
        command.env_remove(name);
    }
    let status = command.status().expect("running cargo for the plugins");
    if !status.success() {
        panic!("building the plugins for {TARGET} failed (see the output above)");
    }
    std::fs::create_dir_all(&dist).expect("creating the plugin dist folder");
    for (package, name) in &crates {
        let built = plugin_target
            .join(TARGET)
            .join("plugin")
            .join(format!("{}.wasm", package.replace('-', "_")));
        let target = dist.join(format!("{name}.wasm"));
        // Write-then-rename, so a running server watching the folder never sees half a file.
        let temp = dist.join(format!(".{name}.wasm.tmp"));
        let bytes =
            std::fs::read(&built).unwrap_or_else(|e| panic!("reading {}: {e}", built.display()));
        if std::fs::read(&target).ok().as_deref() != Some(bytes.as_slice()) {
            std::fs::write(&temp, &bytes).expect("writing a plugin");
            std::fs::rename(&temp, &target).expect("placing a plugin");
        }
    }
}

/// (package name, dist name) of every plugin crate.
fn plugin_crates(root: &Path) -> Vec<(String, String)> {
    let mut crates = Vec::new();
    for dir in ["plugins", "tests/plugins"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            let Ok(manifest) = std::fs::read_to_string(path.join("Cargo.toml")) else {
                continue;
            };
            let Some(package) = manifest.lines().find_map(|line| {
                line.trim()
                    .strip_prefix("name = ")
                    .map(|v| v.trim_matches('"').to_owned())
            }) else {
                continue;
            };
            let name = package
                .strip_prefix("hearth-plugin-")
                .unwrap_or(&package)
                .to_owned();
            crates.push((package, name));
        }
    }
    crates
}

/// Adds the wasm target when the toolchain lacks it.
fn ensure_target() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if sysroot.is_some_and(|s| s.join("lib/rustlib").join(TARGET).exists()) {
        return;
    }
    println!("cargo:warning=installing the {TARGET} target with rustup");
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status();
    match status {
        Ok(s) if s.success() => {}
        _ => panic!("the {TARGET} target is missing and `rustup target add {TARGET}` failed"),
    }
}
