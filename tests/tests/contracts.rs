//! Contract evolution: plugins built against the frozen contracts 0.1.0 and 0.2.0 load and
//! serve beside one built against 0.3.0 on the same site, the 0.2.0 one uses what 0.2.0
//! added (`util.request-id`), the 0.3.0 one what 0.3.0 added (a query asks for the row
//! forms it reads), and a plugin claiming a contract the host does not serve is refused
//! with a message naming the version found and the versions supported.

use hearth::plugins::{engine::Engine, loader};
use hearth_tests::*;

const SCOPE: &str = "openid api:oemr user/patient.crus";

fn options() -> Options {
    Options::with_plugins(
        r#"
[plugins.patient]
file = "patient.wasm"

[plugins.test-contract-v0-1]
file = "test-contract-v0-1.wasm"

[plugins.test-contract-v0-2]
file = "test-contract-v0-2.wasm"

[plugins.test-contract-v0-3]
file = "test-contract-v0-3.wasm"

[sites."*"]
plugins = ["patient", "test-contract-v0-1", "test-contract-v0-2", "test-contract-v0-3"]
"#,
    )
}

both! {
    options = options();

    async fn plugins_of_0_1_0_0_2_0_and_0_3_0_serve_side_by_side(app) {
        let statuses = app.state.registry.statuses("default");
        let contract = |name: &str| {
            statuses.iter().find(|s| s.name == name).and_then(|s| s.contract.clone())
        };
        assert_eq!(contract("test-contract-v0-1").as_deref(), Some("0.1.0"), "{statuses:?}");
        assert_eq!(contract("test-contract-v0-2").as_deref(), Some("0.2.0"), "{statuses:?}");
        assert_eq!(contract("test-contract-v0-3").as_deref(), Some("0.3.0"), "{statuses:?}");
        assert_eq!(contract("patient").as_deref(), Some("0.3.0"), "{statuses:?}");

        let token = app.user_token("default", "admin", SCOPE).await;
        app.create_patient("default", &token, "Ann", "Smith").await;
        app.create_patient("default", &token, "Bob", "Jones").await;

        // The 0.1.0 plugin reads through the adapted store interface.
        let old = app.get(&app.api("default", "/api/contract/v0-1"), &token).await;
        assert_eq!(old.status, 200, "{}", old.text);
        assert_eq!(old.json, json!({"contract": "0.1.0", "patients": 2}));
        assert!(old.header("x-request-id").is_some_and(|id| id.len() == 36), "{:?}", old.headers);

        // The 0.2.0 plugin sees the request id the host sends back to the client.
        let new = app.get(&app.api("default", "/api/contract/v0-2"), &token).await;
        assert_eq!(new.status, 200, "{}", new.text);
        assert_eq!(new.json["data"]["contract"], "0.2.0");
        assert_eq!(new.json["data"]["patients"], 2);
        let id = new.header("x-request-id").expect("every answer carries its request id");
        assert_eq!(new.json["data"]["request_id"], id);
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");

        // A caller's own correlation id is passed through; a malformed one is replaced.
        for (sent, kept) in [("trace-7f3a.1", true), ("bad id with spaces", false)] {
            let reply = Reply::from(
                app.client
                    .get(app.api("default", "/api/contract/v0-2"))
                    .bearer_auth(&token)
                    .header("x-request-id", sent)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            let id = reply.header("x-request-id").unwrap().to_owned();
            assert_eq!(reply.json["data"]["request_id"], id.as_str());
            assert_eq!(id == sent, kept, "sent {sent:?}, got {id:?}");
        }

        // The 0.3.0 plugin reads the same rows as typed values, as the host's JSON members
        // and as both: each form answers the same names, and the members the SDK renders
        // from values are the host's, byte for byte.
        let current = app.get(&app.api("default", "/api/contract/v0-3"), &token).await;
        assert_eq!(current.status, 200, "{}", current.text);
        let data = &current.json["data"];
        assert_eq!(data["contract"], "0.3.0");
        assert_eq!(data["typed"], json!(["Ann Smith", "Bob Jones"]), "{}", current.text);
        assert_eq!(data["host_members"][1]["fname"], "Bob", "{}", current.text);
        assert!(data["host_members"][0]["pid"].is_i64(), "{}", current.text);
        assert_eq!(data["sdk_members"], data["host_members"], "{}", current.text);
        assert_eq!(data["both"][0]["is_first"], true, "{}", current.text);
        assert_eq!(data["both"][1]["is_first"], false, "{}", current.text);
        assert_eq!(data["both"][1]["lname"], "Jones", "{}", current.text);
        let sdk = current.text.split("\"sdk_members\":").nth(1).unwrap();
        let host = current.text.split("\"host_members\":").nth(1).unwrap();
        let array = |text: &str| text[..text.find(']').unwrap() + 1].to_owned();
        assert_eq!(array(sdk), array(host));

        // All keep serving, one after the other, on the other site as well.
        let token = app.user_token("second", "admin", SCOPE).await;
        let old = app.get(&app.api("second", "/api/contract/v0-1"), &token).await;
        assert_eq!(old.json, json!({"contract": "0.1.0", "patients": 0}), "{}", old.text);
        let new = app.get(&app.api("second", "/api/contract/v0-2"), &token).await;
        assert_eq!(new.json["data"]["patients"], 0, "{}", new.text);
        let current = app.get(&app.api("second", "/api/contract/v0-3"), &token).await;
        assert_eq!(current.json["data"]["typed"], json!([]), "{}", current.text);
    }
}

/// The frozen 0.1.0 plugin's component bytes.
fn legacy_component() -> Vec<u8> {
    std::fs::read(workspace().join("target/plugins/dist/test-contract-v0-1.wasm")).unwrap()
}

/// `bytes` with every `needle` replaced by `with` (of the same length, so the component
/// stays well formed).
fn replace_all(bytes: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    assert_eq!(needle.len(), with.len());
    let mut out = bytes.to_vec();
    let mut i = 0;
    while i + needle.len() <= out.len() {
        if &out[i..i + needle.len()] == needle {
            out[i..i + needle.len()].copy_from_slice(with);
            i += needle.len();
        } else {
            i += 1;
        }
    }
    out
}

fn contains(bytes: &[u8], needle: &[u8]) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn the_frozen_plugin_is_a_real_0_1_0_component() {
    let bytes = legacy_component();
    assert!(contains(&bytes, b"hearth:plugin/handler@0.1.0"));
    assert!(contains(&bytes, b"hearth:plugin/store@0.1.0"));
    assert!(
        !contains(&bytes, b"hearth:plugin/handler@0.2.0")
            && !contains(&bytes, b"hearth:plugin/util@0.2.0")
            && !contains(&bytes, b"request-id"),
        "the component has 0.2.0 names in it"
    );
}

#[test]
fn the_frozen_0_2_0_plugin_is_a_real_0_2_0_component() {
    let bytes =
        std::fs::read(workspace().join("target/plugins/dist/test-contract-v0-2.wasm")).unwrap();
    assert!(contains(&bytes, b"hearth:plugin/handler@0.2.0"));
    assert!(contains(&bytes, b"hearth:plugin/store@0.2.0"));
    assert!(contains(&bytes, b"hearth:plugin/util@0.2.0"));
    assert!(
        !contains(&bytes, b"@0.3.0") && !contains(&bytes, b"row-form"),
        "the component has 0.3.0 names in it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_built_against_an_unsupported_contract_is_refused_naming_both_versions() {
    let engine = Engine::new(&workspace().join("target").join("test-plugin-cache"), 8).unwrap();
    let legacy = legacy_component();
    let loaded = loader::load_bytes(&engine, &legacy).await.unwrap();
    assert_eq!(loaded.contract, "0.1.0");
    for claimed in ["0.4.0", "0.0.9"] {
        // The same plugin, its contract names rewritten to claim another version.
        let bytes = replace_all(&legacy, b"@0.1.0", format!("@{claimed}").as_bytes());
        assert!(contains(
            &bytes,
            format!("hearth:plugin/handler@{claimed}").as_bytes()
        ));
        let error = format!(
            "{:#}",
            loader::load_bytes(&engine, &bytes).await.err().unwrap()
        );
        assert!(
            error.contains(&format!("built against contract {claimed}"))
                && error.contains("supports contracts 0.1.0, 0.2.0, 0.3.0"),
            "{error}"
        );
    }
    // A component whose handler claims one version and whose imports another was not
    // built by one SDK.
    let mixed = replace_all(
        &legacy,
        b"hearth:plugin/handler@0.1.0",
        b"hearth:plugin/handler@0.2.0",
    );
    let error = format!(
        "{:#}",
        loader::load_bytes(&engine, &mixed).await.err().unwrap()
    );
    assert!(
        error.contains("contract 0.2.0 but imports hearth:plugin/"),
        "{error}"
    );
}

/// What a contract version is spread over agrees: every version the host serves has its
/// frozen WIT folder and a test plugin built against it that loads as that version (so
/// the loader has a variant for it), every WIT folder is a version the host serves, and
/// the SDK (and the SDK the binary carries for `hearth plugin new`) builds against the
/// newest. The checklist in docs/plugins.md ("Adding a contract version") names the files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supported_versions_wit_folders_loader_variants_and_the_sdk_agree() {
    let supported = loader::SUPPORTED_CONTRACTS;
    let mut folders: Vec<String> = std::fs::read_dir(workspace().join("wit"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    let expected: Vec<String> = supported.iter().map(|v| format!("v{v}")).collect();
    assert_eq!(
        folders, expected,
        "wit/ folders against SUPPORTED_CONTRACTS"
    );
    let engine = Engine::new(&workspace().join("target").join("test-plugin-cache"), 8).unwrap();
    for version in supported {
        let name = format!(
            "test-contract-v{}",
            version
                .strip_suffix(".0")
                .unwrap_or(version)
                .replace('.', "-")
        );
        let file = workspace()
            .join("target/plugins/dist")
            .join(format!("{name}.wasm"));
        let bytes = std::fs::read(&file).unwrap_or_else(|e| {
            panic!(
                "contract {version} has no test plugin {} ({e}): add tests/plugins/{}",
                file.display(),
                name.trim_start_matches("test-")
            )
        });
        let loaded = loader::load_bytes(&engine, &bytes).await.unwrap();
        assert_eq!(&loaded.contract, version, "{name}");
    }
    let newest = *supported.last().unwrap();
    assert_eq!(
        hearth_sdk::CONTRACT_VERSION,
        newest,
        "the SDK builds against the newest contract"
    );
    assert_eq!(hearth::plugins::tooling::sdk_contract(), newest);
}
