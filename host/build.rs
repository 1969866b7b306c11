//! Builds the plugins (every crate under `plugins/` and `tests/plugins/`) as WebAssembly
//! components, so `cargo run` and `cargo test` need nothing else. Adds the
//! `wasm32-wasip2` target with rustup when it is missing.
//!
//! The inner cargo gets its own target directory (`<target>/plugins`): the outer build
//! holds the lock on the workspace's. Finished components are copied to
//! `<target>/plugins/dist/<name>.wasm`, whose path the host is compiled with.
//!
//! It vendors Swagger UI for `/apis/{site}/docs`: `host/ui` pins the npm package
//! `swagger-ui-dist` with a lockfile; when its installed copy is missing or another version,
//! `npm ci --ignore-scripts` installs it, and the files the page needs are copied to
//! `$OUT_DIR/swagger-ui`, where the host embeds them (no CDN, no network at run time).
//!
//! It also embeds the SDK: `$OUT_DIR/sdk_files.rs` lists the SDK's sources and the contract's
//! WIT folders, and a stand-alone manifest for the SDK with the workspace's dependency
//! versions, so `hearth plugin new` can write them wherever the binary runs.

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
    // rebuild the host. `emr` and `fhir` are the domain crates plugins build on.
    for dir in [
        "wit",
        "sdk",
        "emr",
        "fhir",
        "plugins",
        "tests/plugins",
        "migrations",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        root.join("Cargo.lock").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        root.join("Cargo.toml").display()
    );
    embed_sdk(&root, &out_dir);
    vendor_swagger_ui(&host_dir, &out_dir);
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

/// Writes `$OUT_DIR/sdk_files.rs`: `SDK_FILES` (path below the SDK folder, contents) for
/// `sdk/src/**` and `wit/**`, and `SDK_MANIFEST`, the SDK's `Cargo.toml` made stand-alone
/// (each `name.workspace = true` dependency replaced by the workspace's line for it).
fn embed_sdk(root: &Path, out_dir: &Path) {
    let mut files = Vec::new();
    for dir in ["sdk/src", "wit"] {
        collect(root, &root.join(dir), &mut files);
    }
    files.sort();
    let mut code = String::from("/// The SDK's files: (path below the SDK folder, contents).\n");
    code.push_str("pub const SDK_FILES: &[(&str, &str)] = &[\n");
    for (relative, absolute) in &files {
        code.push_str(&format!(
            "    ({relative:?}, include_str!({:?})),\n",
            absolute.display().to_string()
        ));
    }
    code.push_str("];\n");
    let manifest = standalone_manifest(root);
    code.push_str(&format!(
        "/// The SDK's stand-alone `Cargo.toml`.\npub const SDK_MANIFEST: &str = {manifest:?};\n"
    ));
    std::fs::write(out_dir.join("sdk_files.rs"), code).expect("writing sdk_files.rs");
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if path.extension().is_some_and(|e| e == "rs" || e == "wit") {
            let relative = path
                .strip_prefix(root)
                .expect("below the root")
                .to_string_lossy()
                .replace('\\', "/");
            files.push((relative, path));
        }
    }
}

/// `sdk/Cargo.toml` without workspace inheritance.
fn standalone_manifest(root: &Path) -> String {
    let workspace = std::fs::read_to_string(root.join("Cargo.toml")).expect("reading Cargo.toml");
    let sdk = std::fs::read_to_string(root.join("sdk/Cargo.toml")).expect("reading sdk/Cargo.toml");
    let package_value = |key: &str| {
        let section = workspace
            .split("[workspace.package]")
            .nth(1)
            .expect("[workspace.package]");
        section
            .lines()
            .take_while(|l| !l.starts_with('['))
            .find_map(|l| {
                let (k, v) = l.split_once('=')?;
                (k.trim() == key).then(|| v.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("[workspace.package] has no {key}"))
    };
    let dependency = |name: &str| {
        let section = workspace
            .split("[workspace.dependencies]")
            .nth(1)
            .expect("[workspace.dependencies]");
        let line = section
            .lines()
            .find(|l| l.split_once('=').is_some_and(|(k, _)| k.trim() == name))
            .unwrap_or_else(|| panic!("the workspace pins no {name}"));
        let open = line.matches('{').count();
        assert_eq!(
            open,
            line.matches('}').count(),
            "the SDK's dependency {name} must be pinned on one line in Cargo.toml"
        );
        line.trim().to_owned()
    };
    let mut out = String::new();
    for line in sdk.lines() {
        let trimmed = line.trim();
        let rewritten = match trimmed.split_once('=') {
            Some((key, value)) if value.trim() == "true" && key.trim().ends_with(".workspace") => {
                let key = key.trim().trim_end_matches(".workspace");
                match key {
                    "version" | "edition" | "rust-version" | "license" => {
                        format!("{key} = {}", package_value(key))
                    }
                    name => dependency(name),
                }
            }
            _ => line.to_owned(),
        };
        out.push_str(&rewritten);
        out.push('\n');
    }
    out.push_str("\n# Written by `hearth plugin new`; a workspace of its own.\n[workspace]\n");
    out
}

/// The Swagger UI files the host serves, copied from `swagger-ui-dist`.
const SWAGGER_UI_FILES: &[&str] = &[
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "swagger-ui.css",
    "oauth2-redirect.js",
    "LICENSE",
];

/// Installs `host/ui`'s pinned `swagger-ui-dist` when needed and copies its files to
/// `$OUT_DIR/swagger-ui`.
fn vendor_swagger_ui(host_dir: &Path, out_dir: &Path) {
    let ui = host_dir.join("ui");
    for file in ["package.json", "package-lock.json"] {
        println!("cargo:rerun-if-changed={}", ui.join(file).display());
    }
    let lock = std::fs::read_to_string(ui.join("package-lock.json"))
        .expect("reading host/ui/package-lock.json");
    let pinned = locked_version(&lock, "node_modules/swagger-ui-dist")
        .expect("host/ui/package-lock.json pins swagger-ui-dist");
    let dist = ui.join("node_modules").join("swagger-ui-dist");
    let installed = std::fs::read_to_string(dist.join("package.json"))
        .ok()
        .and_then(|text| {
            text.split("\"version\"")
                .nth(1)
                .and_then(|rest| rest.split('"').nth(1).map(str::to_owned))
        });
    if installed.as_deref() != Some(pinned.as_str()) {
        let npm = env::var("NPM").unwrap_or_else(|_| "npm".into());
        let status = Command::new(&npm)
            .current_dir(&ui)
            .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"])
            .status()
            .unwrap_or_else(|e| {
                panic!("running `{npm} ci` in host/ui for Swagger UI failed: {e} (install Node.js 20 and npm)")
            });
        if !status.success() {
            panic!("`npm ci` in host/ui failed (see the output above)");
        }
    }
    let target = out_dir.join("swagger-ui");
    std::fs::create_dir_all(&target).expect("creating $OUT_DIR/swagger-ui");
    for file in SWAGGER_UI_FILES {
        let from = dist.join(file);
        std::fs::copy(&from, target.join(file))
            .unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
    }
}

/// The `version` of the lockfile's `packages` entry `key`.
fn locked_version(lock: &str, key: &str) -> Option<String> {
    let at = lock.find(&format!("\"{key}\""))?;
    let rest = &lock[at..];
    let rest = &rest[rest.find("\"version\"")? + "\"version\"".len()..];
    rest.split('"').nth(1).map(str::to_owned)
}
