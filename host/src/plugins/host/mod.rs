//! What a plugin instance can call: the contract's imports, one context per capability.
//!
//! The store's data, [`State`], is made per request and composed of small contexts, one per
//! capability, each in its own file with its own tests:
//!
//! | context          | file          | interface | holds                                         |
//! |------------------|---------------|-----------|-----------------------------------------------|
//! | [`RequestCtx`]   | `request.rs`  | (shared)  | site, plugin name, request id                 |
//! | [`LimitsCtx`]    | `limits.rs`   | (wasmtime)| memory cap, deadline                          |
//! | [`StoreCtx`]     | `store.rs`    | `store`   | grants, may-write, transaction, statements    |
//! | [`LogCtx`]       | `log.rs`      | `log`     | bytes logged, console output                  |
//! | [`ConfigCtx`]    | `config.rs`   | `config`  | configuration values, declared keys           |
//! | —                | `util.rs`     | `util`    | nothing (uuid, clock, request id)             |
//!
//! Each interface's `Host` trait is implemented on a *view* (`StoreView`, `LogView`, …)
//! that borrows its own context mutably and the request and limits contexts read-only, so
//! an interface cannot reach another's state. [`add_to_linker`] links every supported
//! contract version's interfaces to those views; the older versions' adapters are in
//! [`super::compat`].

pub mod config;
pub mod limits;
pub mod log;
pub mod request;
pub mod store;
pub mod util;

use wasmtime::component::{HasSelf, Linker};

pub use config::{ConfigCtx, ConfigHost, ConfigView};
pub use limits::{DeadlineExceeded, LimitsCtx};
pub use log::{CONSOLE_LIMIT, LOG_LINE_BYTES, LOG_REQUEST_BYTES, LogCtx, LogHost, LogView};
pub use request::RequestCtx;
pub use store::{DatabaseLimit, DatabaseUnavailable, StoreCtx, StoreHost, StoreView};
pub use util::{UtilHost, UtilView, comb_uuid};

use super::bindings::{v0_1, v0_2, v0_3};

/// The data of a plugin instance's store: one context per capability.
pub struct State {
    /// Who is calling: site, plugin, request id.
    pub request: RequestCtx,
    /// Memory cap and deadline.
    pub limits: LimitsCtx,
    /// Data access.
    pub store: StoreCtx,
    /// Log lines and console output.
    pub log: LogCtx,
    /// Configuration.
    pub config: ConfigCtx,
}

impl State {
    /// State for the one `describe` call at load time: no site, no data access.
    pub fn describing() -> State {
        State {
            request: RequestCtx::describing(),
            limits: LimitsCtx::describing(),
            store: StoreCtx::describing(),
            log: LogCtx::default(),
            config: ConfigCtx::default(),
        }
    }

    /// The `store` interface's view.
    pub fn store_view(&mut self) -> StoreView<'_> {
        StoreView {
            ctx: &mut self.store,
            request: &self.request,
            limits: &self.limits,
        }
    }

    /// The `log` interface's view.
    pub fn log_view(&mut self) -> LogView<'_> {
        LogView {
            ctx: &mut self.log,
            request: &self.request,
        }
    }

    /// The `config` interface's view.
    pub fn config_view(&mut self) -> ConfigView<'_> {
        ConfigView {
            ctx: &self.config,
            request: &self.request,
        }
    }

    /// The `util` interface's view.
    pub fn util_view(&mut self) -> UtilView<'_> {
        UtilView {
            request: &self.request,
        }
    }
}

impl v0_3::hearth::plugin::types::Host for State {}

/// Links every supported contract version's imports: each interface to its view. The
/// instance names carry the version, so versions never collide on the one linker.
pub fn add_to_linker(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    // 0.3.0, the current contract.
    {
        use v0_3::hearth::plugin as current;
        current::types::add_to_linker::<State, HasSelf<State>>(linker, |state| state)?;
        current::store::add_to_linker::<State, StoreHost>(linker, State::store_view)?;
        current::log::add_to_linker::<State, LogHost>(linker, State::log_view)?;
        current::config::add_to_linker::<State, ConfigHost>(linker, State::config_view)?;
        current::util::add_to_linker::<State, UtilHost>(linker, State::util_view)?;
    }
    // 0.2.0, through the adapters in `compat`.
    {
        use v0_2::hearth::plugin as old;
        // Its `types` interface is 0.3.0's (`with` in `bindings`): only the name is its own.
        linker.instance("hearth:plugin/types@0.2.0")?;
        old::store::add_to_linker::<State, StoreHost>(linker, State::store_view)?;
        old::log::add_to_linker::<State, LogHost>(linker, State::log_view)?;
        old::config::add_to_linker::<State, ConfigHost>(linker, State::config_view)?;
        old::util::add_to_linker::<State, UtilHost>(linker, State::util_view)?;
    }
    // 0.1.0, through the adapters in `compat`.
    {
        use v0_1::hearth::plugin as old;
        // Its `types` interface is 0.3.0's too.
        linker.instance("hearth:plugin/types@0.1.0")?;
        old::store::add_to_linker::<State, StoreHost>(linker, State::store_view)?;
        old::log::add_to_linker::<State, LogHost>(linker, State::log_view)?;
        old::config::add_to_linker::<State, ConfigHost>(linker, State::config_view)?;
        old::util::add_to_linker::<State, UtilHost>(linker, State::util_view)?;
    }
    Ok(())
}
