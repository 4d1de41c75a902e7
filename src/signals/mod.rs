//! The Shared Signals receiver (OpenID SSF 1.0 with CAEP and RISC): a
//! transmitter's Security Event Tokens (RFC 8417) are validated here into
//! typed events about typed subjects ([`set`], [`events`], [`subject`]),
//! before the receiver applies them to sessions and the directory.
//!
//! Signature checks are `crate::jws`'s, shared with `oidc` but not through
//! it: the receiver and the protocols are siblings.

pub mod events;
pub mod set;
pub mod subject;
