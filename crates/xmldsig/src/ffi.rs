//! The unsafe part: a libxmlsec1 key loaded from a certificate, and one
//! `<ds:Signature>` verified with it. Everything else in the crate is
//! safe code over the `libxml` crate's tree.
//!
//! Invariants this module keeps:
//! - a [`LoadedKey`] owns its `xmlSecKey` (destroyed once, on drop) and is
//!   used by one verification at a time: it is `Send` (libxmlsec1 keeps no
//!   thread-affine state in a key) but not `Sync`, and [`verify`] takes it
//!   by `&mut`. libxmlsec1 does not document keys as safe to use from two
//!   threads at once, so the crate never does (the pool hands each key to
//!   one caller).
//! - a signature context borrows the key: it is set as `signKey` for the
//!   verification and taken back before the context is destroyed (which
//!   would otherwise destroy the key with it).
//! - the node pointer given to [`verify`] comes from a live `libxml`
//!   document the caller holds for the whole call.

#![allow(unsafe_code)]

use std::ptr::{null, null_mut, NonNull};

use crate::Error;

#[allow(
    dead_code,
    non_snake_case,
    non_camel_case_types,
    non_upper_case_globals,
    improper_ctypes
)]
#[allow(clippy::all)]
mod sys {
    include!(concat!(env!("OUT_DIR"), "/xmlsec.rs"));
}

/// An IdP certificate's public key, loaded into libxmlsec1.
pub(crate) struct LoadedKey(NonNull<sys::xmlSecKey>);

// SAFETY: the key is plain heap data of libxmlsec1 and OpenSSL (reference
// counts in OpenSSL are atomic); it is only ever used by one thread at a
// time (`&mut` in `verify`, not `Sync`), so moving it between threads is
// sound.
unsafe impl Send for LoadedKey {}

impl LoadedKey {
    /// Loads the key of a DER certificate. libxmlsec1 must be initialised
    /// (the caller, `crate::init`, sees to it).
    pub(crate) fn from_certificate_der(der: &[u8]) -> Result<Self, Error> {
        let size = u32::try_from(der.len()).map_err(|_| Error::Certificate)?;
        // SAFETY: `der` is valid for `size` bytes for the call; no password
        // or callback is passed; the returned key (or null) is ours.
        let key = unsafe {
            sys::xmlSecOpenSSLAppKeyLoadMemory(
                der.as_ptr(),
                size as _,
                sys::xmlSecKeyDataFormat_xmlSecKeyDataFormatCertDer,
                null(),
                null_mut(),
                null_mut(),
            )
        };
        NonNull::new(key).map(Self).ok_or(Error::Certificate)
    }
}

impl Drop for LoadedKey {
    fn drop(&mut self) {
        // SAFETY: we own the key and no context holds it (see `verify`).
        unsafe { sys::xmlSecKeyDestroy(self.0.as_ptr()) }
    }
}

/// One verified `<ds:Reference>`: its URI and the bytes its digest covers
/// (after its transforms: the canonical form of what was signed).
pub(crate) struct VerifiedReference {
    pub uri: Option<String>,
    pub canonical: String,
}

/// A signature context that gives its borrowed key back before it goes.
struct Context(NonNull<sys::xmlSecDSigCtx>);

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the context is ours; its `signKey` was reset to null
        // before (or never set), so destroying it frees only its own state.
        unsafe {
            (*self.0.as_ptr()).signKey = null_mut();
            sys::xmlSecDSigCtxDestroy(self.0.as_ptr());
        }
    }
}

/// Verifies the `<ds:Signature>` at `signature` with `key`. `Ok(None)`: the
/// signature does not verify with this key. `Ok(Some(references))`: it
/// does, and every reference's digest matched.
///
/// The caller guarantees `signature` points to a `ds:Signature` element of
/// a document alive for the whole call (crate::verify holds it).
pub(crate) fn verify(
    signature: *mut libxml::bindings::xmlNode,
    key: &mut LoadedKey,
) -> Result<Option<Vec<VerifiedReference>>, Error> {
    // SAFETY: a null keys manager is allowed (the key is set directly).
    let context = NonNull::new(unsafe { sys::xmlSecDSigCtxCreate(null_mut()) })
        .map(Context)
        .ok_or(Error::Library("cannot create a signature context"))?;
    let ctx = context.0.as_ptr();
    // SAFETY: `ctx` is a live context; the key outlives it (it is borrowed
    // for this function and reset to null in `Context::drop`); `signature`
    // is a live node of the caller's document.
    let rc = unsafe {
        (*ctx).flags |= sys::XMLSEC_DSIG_FLAGS_STORE_SIGNEDINFO_REFERENCES;
        (*ctx).signKey = key.0.as_ptr();
        sys::xmlSecDSigCtxVerify(ctx, signature.cast())
    };
    if rc < 0 {
        return Err(Error::Library("the signature could not be processed"));
    }
    // SAFETY: `ctx` is live; its status was set by the verification.
    if unsafe { (*ctx).status } != sys::xmlSecDSigStatus_xmlSecDSigStatusSucceeded {
        return Ok(None);
    }
    // SAFETY: as above; the list and its items belong to the context and
    // are read before it is dropped.
    let references = unsafe { references(ctx)? };
    drop(context);
    Ok(Some(references))
}

/// The references of a verified SignedInfo, each with its pre-digest bytes.
///
/// # Safety
/// `ctx` is a live context after a successful verification with
/// `XMLSEC_DSIG_FLAGS_STORE_SIGNEDINFO_REFERENCES`.
unsafe fn references(ctx: *mut sys::xmlSecDSigCtx) -> Result<Vec<VerifiedReference>, Error> {
    let list = unsafe { &raw mut (*ctx).signedInfoReferences };
    let count = unsafe { sys::xmlSecPtrListGetSize(list) };
    let mut out = Vec::new();
    for i in 0..count {
        let item = unsafe { sys::xmlSecPtrListGetItem(list, i) } as sys::xmlSecDSigReferenceCtxPtr;
        if item.is_null() || unsafe { (*item).status } != sys::xmlSecDSigStatus_xmlSecDSigStatusSucceeded {
            return Err(Error::Invalid);
        }
        let uri = unsafe { (*item).uri };
        let uri = (!uri.is_null()).then(|| {
            unsafe { std::ffi::CStr::from_ptr(uri.cast()) }
                .to_string_lossy()
                .into_owned()
        });
        let buffer = unsafe { sys::xmlSecDSigReferenceCtxGetPreDigestBuffer(item) };
        if buffer.is_null() {
            return Err(Error::Library("no pre-digest buffer"));
        }
        let (data, size) = unsafe { (sys::xmlSecBufferGetData(buffer), sys::xmlSecBufferGetSize(buffer)) };
        let bytes = if data.is_null() || size == 0 {
            &[][..]
        } else {
            // SAFETY: the buffer holds `size` bytes at `data` while the
            // context lives; they are copied out here.
            unsafe { std::slice::from_raw_parts(data, size as usize) }
        };
        let canonical = String::from_utf8(bytes.to_vec()).map_err(|_| Error::Invalid)?;
        out.push(VerifiedReference { uri, canonical });
    }
    Ok(out)
}

/// Whether the document has a document type declaration (an internal or
/// external subset): entities, attribute defaults and DTD-declared IDs all
/// start there, and no SAML message has one.
pub(crate) fn has_doctype(document: &libxml::tree::Document) -> bool {
    // SAFETY: the document is live (borrowed for the call); two pointer
    // fields of its struct are read, nothing is written.
    unsafe {
        let doc = document.doc_ptr();
        !(*doc).intSubset.is_null() || !(*doc).extSubset.is_null()
    }
}

/// Registers `attribute`'s value as an ID of `document`, after checking it
/// is an NCName, so that `#ID` references resolve to that element. False:
/// not an NCName, or libxml2 refused it.
pub(crate) fn register_id(
    document: &libxml::tree::Document,
    element: &libxml::tree::Node,
    attribute: &str,
    value: &str,
) -> bool {
    let (Ok(name), Ok(id)) = (std::ffi::CString::new(attribute), std::ffi::CString::new(value)) else {
        return false;
    };
    // SAFETY: the C strings live for the calls; `element` is a live node of
    // the live `document` (both borrowed for the call); libxml2 copies
    // the value into the document's ID table.
    unsafe {
        if libxml::bindings::xmlValidateNCName(id.as_ptr().cast(), 0) != 0 {
            return false;
        }
        let attr = libxml::bindings::xmlHasProp(element.node_ptr(), name.as_ptr().cast());
        !attr.is_null()
            && !libxml::bindings::xmlAddID(null_mut(), document.doc_ptr(), id.as_ptr().cast(), attr).is_null()
    }
}
