//! In-process tests of doorward's own endpoints: each handler called with
//! a request head and an in-memory body, on the login machinery `serve`
//! builds, on a manual clock. Where a handler would need an IdP, its
//! refusals are tested (bad state, missing cookie, wrong method, expired
//! pending login), which need none.

pub(crate) mod harness;

mod dispatch;
mod finish;
mod introspect;
mod login;
mod logout;
mod oidc;
mod saml;
mod step_up;
