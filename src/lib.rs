//! doorward: an identity-aware reverse proxy.
//!
//! The binary (`src/main.rs`) is a thin CLI over this library; integration
//! tests start [`server::Server`] in-process on port 0.
//!
//! Layers, lowest first: `clock`, `access` (the access generation and the
//! registry of long-lived admissions), `paths`, `config` (types and checks
//! only), `identity` (pure), `jws` (signature checks of signed tokens),
//! `identity_headers`, `keyring` (cookie sealing
//! and token keys), `idp_http` (the client for identity providers), `store`
//! (rows), `directory` (the handle the directory is written through),
//! `login` (protocol-neutral results, tokens, pending logins), then
//! `session` and the protocols `oidc` and `saml` (siblings), `providers`
//! (the one provider type above the protocols, its construction and its
//! metadata refresh), `assertion`, `respond` (every answer doorward makes
//! itself), `auth` (the admission gate and login endpoints), `scim` (the
//! SCIM 2.0 server, over the directory handle), `proxy` (the request
//! path), then `build`, `reload` and `server`.
#![forbid(unsafe_code)]

pub mod access;
pub mod admin;
pub mod assertion;
pub mod audit;
pub mod auth;
pub mod build;
pub mod clock;
pub mod config;
pub mod directory;
#[doc(hidden)]
pub mod fuzz_targets;
pub mod identity;
pub mod identity_headers;
pub mod idp_http;
pub mod jws;
pub mod keyring;
pub mod login;
pub mod memory;
pub mod metrics;
pub mod oidc;
pub mod paths;
pub mod probe;
pub mod providers;
pub mod proxy;
pub mod reload;
pub mod respond;
pub mod saml;
pub mod scim;
pub mod secret;
pub mod server;
pub mod serving;
pub mod session;
pub mod signals;
pub mod snapshot_member;
pub mod store;
pub mod telemetry;
pub mod tls;
