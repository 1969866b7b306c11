//! Hearth: the OpenEMR REST, portal and FHIR APIs and an OAuth2/OpenID Connect server, as a
//! host for sandboxed WebAssembly plugins.
//!
//! The host owns everything that must be trusted and shared: TLS and HTTP, sites, token
//! verification, database pools and transactions, the plugin runtime and the audit log.
//! Each clinical resource is a plugin (see `wit/` and the `hearth-sdk` crate).

pub mod admin;
pub mod allocator;
pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod connections;
pub mod console;
pub mod crypto;
pub mod db;
pub mod error;
pub mod fhir;
pub mod formats;
pub mod oauth;
pub mod openapi;
pub mod ops;
pub mod plugins;
pub mod proxy;
pub mod registrar;
pub mod sites;
pub mod state;
pub mod telemetry;
pub mod tls;
pub mod web;
