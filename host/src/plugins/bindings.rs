//! The host side of the contract: one `bindgen!` per released WIT version, each in its own
//! module. The host implements the newest version ([`v0_3`]); [`super::compat`] serves
//! the older worlds with that same implementation, so a plugin built against any supported
//! version links against one linker.
//!
//! The types re-exported at the top level are the newest version's: the rest of the host
//! speaks only those.

/// `hearth:plugin@0.3.0`, the current contract: 0.2.0 with `store.query` answering only
/// the row forms the plugin asks for.
pub mod v0_3 {
    wasmtime::component::bindgen!({
        world: "resource-plugin",
        path: "../wit/v0.3.0",
        imports: {
            "hearth:plugin/store.query": async | trappable,
            "hearth:plugin/store.execute": async | trappable,
            default: trappable,
        },
        exports: { default: async },
    });
}

/// `hearth:plugin@0.2.0`, released and frozen: 0.1.0 plus `util.request-id`; served
/// through [`super::compat`].
pub mod v0_2 {
    wasmtime::component::bindgen!({
        world: "resource-plugin",
        path: "../wit/v0.2.0",
        // The request, response and description types did not change in 0.3.0.
        with: { "hearth:plugin/types@0.2.0": super::v0_3::hearth::plugin::types },
        imports: {
            "hearth:plugin/store.query": async | trappable,
            "hearth:plugin/store.execute": async | trappable,
            default: trappable,
        },
        exports: { default: async },
    });
}

/// `hearth:plugin@0.1.0`, released and frozen; served through [`super::compat`].
pub mod v0_1 {
    wasmtime::component::bindgen!({
        world: "resource-plugin",
        path: "../wit/v0.1.0",
        // The request, response and description types did not change in 0.2.0 or 0.3.0:
        // sharing them leaves the adapter only the interfaces that did differ.
        with: { "hearth:plugin/types@0.1.0": super::v0_3::hearth::plugin::types },
        imports: {
            "hearth:plugin/store.query": async | trappable,
            "hearth:plugin/store.execute": async | trappable,
            default: trappable,
        },
        exports: { default: async },
    });
}

pub use v0_3::hearth::plugin::types::{
    Caller, Family, Method, PluginInfo, Request, Response, Role, Route,
};
pub use v0_3::hearth::plugin::{config, log, store, types, util};
pub use v0_3::{ResourcePlugin, ResourcePluginPre};

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    /// SHA-256 of every released WIT file. A released contract never changes: plugins
    /// built against it must keep loading. A change is a new version in a folder of its
    /// own (and a new line here); this test fails on an accidental edit.
    const RELEASED: &[(&str, &str)] = &[
        (
            "v0.1.0/host.wit",
            "f502d811c4aeda46f09e8b25bfe96f9f2a48063fd5a351dc70ff21a3e471e4cb",
        ),
        (
            "v0.1.0/types.wit",
            "26d18c90cf9d5b8ed901906e73f7d0398d52f3c2494a4bd6c335d89ae8ac8d43",
        ),
        (
            "v0.1.0/world.wit",
            "49ad2c52e3b84c35418e42410d07ce1482ec635a7f763a56e2f426f54032040b",
        ),
        (
            "v0.2.0/host.wit",
            "df67808a66273985f5bf35f7da0f4214a05aca44a693e6ffa01561d3d5eff299",
        ),
        (
            "v0.2.0/types.wit",
            "2d61d4864b46008e5ea28a1b6f6141023b492f77501129d9a2f59e9e965eba7c",
        ),
        (
            "v0.2.0/world.wit",
            "164921022f7d4c9104cc58c5093a451a411df06b0953e2add816caf8ed77f1a9",
        ),
        (
            "v0.3.0/host.wit",
            "d98e990faea27a55ad85d7b2cbbc20c65bf6ba28454be902f74c2dc22063d556",
        ),
        (
            "v0.3.0/types.wit",
            "d776800bffaaafbfdb89593a1064d48bb1928260a6ad27bb76bc07489689a212",
        ),
        (
            "v0.3.0/world.wit",
            "7544e6a69c1c0909a898e60761c03e3244880881ffdcd4c279bcbcb730d68d70",
        ),
    ];

    #[test]
    fn released_wit_files_are_frozen() {
        let wit = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
        for (file, expected) in RELEASED {
            let bytes = std::fs::read(wit.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            let found = hex::encode(Sha256::digest(&bytes));
            assert_eq!(
                &found, expected,
                "wit/{file} changed, but it is a released contract: add a new version folder instead"
            );
        }
        // Every WIT file of a version folder is listed: a file added to a released
        // version would change the contract as surely as an edit.
        for version in std::fs::read_dir(&wit).unwrap() {
            let version = version.unwrap();
            for file in std::fs::read_dir(version.path()).unwrap() {
                let name = format!(
                    "{}/{}",
                    version.file_name().to_string_lossy(),
                    file.unwrap().file_name().to_string_lossy()
                );
                assert!(
                    RELEASED.iter().any(|(listed, _)| *listed == name),
                    "wit/{name} is not listed as released"
                );
            }
        }
    }

    #[test]
    fn every_supported_contract_has_its_wit_folder() {
        let wit = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
        for version in super::super::loader::SUPPORTED_CONTRACTS {
            let world = std::fs::read_to_string(wit.join(format!("v{version}/world.wit")))
                .unwrap_or_else(|e| panic!("contract {version}: {e}"));
            assert!(world.starts_with(&format!("package hearth:plugin@{version};")));
        }
    }
}
