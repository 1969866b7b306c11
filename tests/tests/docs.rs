//! The plugin author's guide stays true: every Rust block in `docs/plugins.md` is a region
//! of a crate that is built and tested (`tests/plugins/guide-example`), every
//! `plugins.toml` snippet in the docs parses with the host's manifest parser, the
//! `Cargo.toml` shown is the one `hearth plugin new` writes, and the request file shown
//! for `hearth plugin call` parses with the tool's parser.

use std::path::Path;

use hearth::plugins::manifest::Manifest;
use hearth::plugins::tooling;
use hearth_tests::*;

/// A fenced code block: its language and its text.
struct Block {
    lang: String,
    line: usize,
    text: String,
}

/// The fenced blocks of `doc`, fences indented (inside list items) included; the fence's
/// indentation is taken off the block's lines.
fn blocks(doc: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<(Block, usize)> = None;
    for (n, line) in doc.lines().enumerate() {
        let trimmed = line.trim_start();
        let fence = trimmed.strip_prefix("```");
        match (&mut open, fence) {
            (None, Some(lang)) => {
                let block = Block {
                    lang: lang.trim().to_owned(),
                    line: n + 1,
                    text: String::new(),
                };
                open = Some((block, line.len() - trimmed.len()));
            }
            (Some(_), Some(_)) => out.push(open.take().unwrap().0),
            (Some((block, indent)), None) => {
                block
                    .text
                    .push_str(line.get(*indent..).unwrap_or("").trim_end_matches('\r'));
                block.text.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "an unclosed code block");
    out
}

fn read(path: &str) -> String {
    std::fs::read_to_string(workspace().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// True when `block` appears in `source` as consecutive lines, all indented alike (a
/// block may show the body of a function without its indentation).
fn is_region_of(block: &str, source: &str) -> bool {
    let wanted: Vec<&str> = block.lines().collect();
    let lines: Vec<&str> = source.lines().collect();
    let Some(first) = wanted.first() else {
        return false;
    };
    (0..lines.len()).any(|start| {
        let Some(indent) = lines[start].strip_suffix(first) else {
            return false;
        };
        indent.chars().all(|c| c == ' ')
            && start + wanted.len() <= lines.len()
            && wanted.iter().zip(&lines[start..]).all(|(want, have)| {
                (want.is_empty() && have.trim().is_empty())
                    || have.strip_prefix(indent) == Some(want)
            })
    })
}

#[test]
fn every_rust_block_of_the_guide_is_code_that_compiles() {
    let doc = read("docs/plugins.md");
    let source = read("tests/plugins/guide-example/src/lib.rs");
    let rust: Vec<Block> = blocks(&doc)
        .into_iter()
        .filter(|b| b.lang == "rust")
        .collect();
    assert!(
        rust.len() >= 3,
        "the guide shows its example, validation and a test"
    );
    for block in &rust {
        assert!(
            is_region_of(&block.text, &source),
            "docs/plugins.md line {}: this block is not a region of \
             tests/plugins/guide-example/src/lib.rs, so nothing compiles it; \
             update the one from the other:\n{}",
            block.line,
            block.text
        );
    }
    // The complete example is about 30 lines, as the guide promises.
    let example = &rust[0].text;
    assert!(
        example.contains("hearth_sdk::export!(FacilityLite);"),
        "{example}"
    );
    let code_lines = example.lines().filter(|l| !l.trim().is_empty()).count();
    assert!((20..=45).contains(&code_lines), "{code_lines} lines");
}

#[test]
fn the_region_check_notices_drift() {
    let source = "fn f() {\n    let a = 1;\n    let b = 2;\n}\n";
    assert!(is_region_of("let a = 1;\nlet b = 2;\n", source));
    assert!(!is_region_of("let a = 1;\nlet b = 3;\n", source));
    assert!(!is_region_of("let a = 1;\n  let b = 2;\n", source));
}

#[test]
fn every_plugins_toml_and_hearth_toml_snippet_in_the_docs_parses() {
    let mut checked = 0;
    for doc in ["docs/plugins.md", "docs/admin.md"] {
        for block in blocks(&read(doc)).into_iter().filter(|b| b.lang == "toml") {
            if block.text.contains("[package]") {
                continue;
            }
            if block.text.starts_with("# data/hearth.toml") {
                // The host's configuration file, checked by the host's own loader.
                let dir =
                    std::env::temp_dir().join(format!("hearth-doc-{:016x}", rand::random::<u64>()));
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(dir.join("hearth.toml"), &block.text).unwrap();
                let loaded = hearth::config::Config::load(&dir, &Default::default());
                let _ = std::fs::remove_dir_all(&dir);
                if let Err(error) = loaded {
                    panic!("{doc} line {}: {error:#}\n{}", block.line, block.text);
                }
                continue;
            }
            if let Err(error) = Manifest::parse(&block.text) {
                panic!("{doc} line {}: {error:#}\n{}", block.line, block.text);
            }
            checked += 1;
        }
    }
    assert!(checked >= 2, "only {checked} plugins.toml snippets");
}

#[test]
fn the_guide_shows_the_cargo_toml_that_plugin_new_writes() {
    let doc = read("docs/plugins.md");
    let shown: Vec<Block> = blocks(&doc)
        .into_iter()
        .filter(|b| b.lang == "toml" && b.text.contains("[package]"))
        .collect();
    assert_eq!(shown.len(), 1);
    // A scratch workspace with a `plugins/` folder, as `plugin new` finds in Hearth's.
    let root = std::env::temp_dir().join(format!("hearth-docs-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(root.join("plugins")).unwrap();
    std::fs::write(
        root.join("Cargo.toml"),
        "[workspace]\nmembers = [\"plugins/*\"]\n",
    )
    .unwrap();
    let dir = tooling::new_plugin(&root.join("plugins"), "facility-lite", None).unwrap();
    let written = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert_eq!(
        shown[0].text, written,
        "docs/plugins.md line {}",
        shown[0].line
    );
    // And the guide's example crate is that crate (plus a dev-dependency for its tests),
    // under a package name of its own so that following the guide in this workspace does
    // not collide with it.
    let example = read("tests/plugins/guide-example/Cargo.toml");
    let renamed = written.replace("hearth-plugin-facility-lite", "hearth-plugin-guide-example");
    assert!(example.starts_with(&renamed), "{example}");
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn the_request_file_shown_for_plugin_call_parses() {
    let doc = read("docs/plugins.md");
    let json: Vec<Block> = blocks(&doc)
        .into_iter()
        .filter(|b| b.lang == "json")
        .collect();
    assert!(!json.is_empty());
    for block in json {
        if let Err(error) = tooling::parse_requests(&block.text) {
            panic!("docs/plugins.md line {}: {error:#}", block.line);
        }
    }
}

#[test]
fn the_guide_names_the_current_contract() {
    let doc = read("docs/plugins.md");
    let current = hearth::plugins::loader::SUPPORTED_CONTRACTS.last().unwrap();
    assert!(doc.contains(&format!("hearth:plugin@{current}")));
    assert!(Path::new(&workspace().join(format!("wit/v{current}"))).is_dir());
}
