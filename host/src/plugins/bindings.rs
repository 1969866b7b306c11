//! The host side of the contract, generated once from `wit/v0.1.0`.

wasmtime::component::bindgen!({
    world: "resource-plugin",
    path: "../wit/v0.1.0",
    imports: {
        "hearth:plugin/store.query": async | trappable,
        "hearth:plugin/store.execute": async | trappable,
        default: trappable,
    },
    exports: { default: async },
});

pub use self::hearth::plugin::types::{
    Caller, Family, Method, PluginInfo, Request, Response, Role, Route,
};
pub use self::hearth::plugin::{config, log, store, types, util};
