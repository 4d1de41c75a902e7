//! End-to-end tests: doorward on real sockets in front of a real upstream
//! HTTP server, all on 127.0.0.1 port 0.

mod child;
mod idp;
mod idp_front;
#[path = "../common/postgres.rs"]
mod postgres;
mod saml_peer;
mod scenario;
mod ssf_peer;
mod support;

mod auth_metrics;
mod bearer;
mod browser;
mod client_auth;
mod faults;
mod faults_disk;
mod faults_idp;
mod faults_store;
mod faults_upload;
mod flood;
mod gate;
mod generations;
mod h2_abuse;
mod hygiene;
mod identity;
mod interop;
mod kubernetes;
mod large_bodies;
mod lifecycle;
mod oidc;
mod operators;
mod pages;
mod paths;
mod provenance;
mod proxying;
mod reload;
mod replicas;
mod request_tricks;
mod saml;
mod saml_attacks;
mod saml_slo;
mod saml_step_up;
mod scim;
mod scim_compliance;
mod scim_lockout;
mod scim_ops;
mod sessions;
mod signals;
mod signals_attacks;
mod signals_streams;
mod soak;
mod step_up;
mod store_url;
mod tls;
mod upgrades;
