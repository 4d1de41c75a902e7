//! In-process tests of the request path: the `Gateway` assembled by the
//! constructor `serve` uses, driven with requests made in memory (no
//! socket), on a manual clock. What needs an upstream connection is left
//! to the end-to-end tests; everything before it is here.

mod harness;
mod policy;
mod process;
mod rewrite;
