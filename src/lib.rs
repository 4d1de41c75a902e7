//! doorward: an identity-aware reverse proxy.
//!
//! The binary (`src/main.rs`) is a thin CLI over this library; integration
//! tests start [`server::Server`] in-process on port 0.
#![forbid(unsafe_code)]

pub mod assertion;
pub mod auth;
pub mod config;
pub mod identity;
pub mod metrics;
pub mod oidc;
pub mod probe;
pub mod proxy;
pub mod secret;
pub mod server;
pub mod session;
pub mod store;
pub mod telemetry;
pub mod tls;
