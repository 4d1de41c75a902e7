//! Bindings to the few libxmlsec1 functions and structs the verifier uses,
//! generated against the installed headers with the flags xmlsec1-config
//! gives (they change struct layouts, e.g. `XMLSEC_NO_SIZE_T`), as samael
//! does. Only the static (non dynamic-loading) OpenSSL build is supported.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn config(arg: &str) -> Vec<String> {
    let out = Command::new("xmlsec1-config")
        .arg(arg)
        .output()
        .unwrap_or_else(|e| panic!("xmlsec1-config {arg}: {e} (is libxmlsec1-dev installed?)"));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let cflags = config("--cflags");
    if cflags.iter().any(|f| f == "-DXMLSEC_CRYPTO_DYNAMIC_LOADING=1") {
        panic!("libxmlsec1 is built with dynamic crypto loading; doorward-xmldsig needs the OpenSSL backend linked");
    }
    println!("cargo:rustc-link-lib=xmlsec1-openssl");
    println!("cargo:rustc-link-lib=xmlsec1");
    println!("cargo:rustc-link-lib=xml2");
    let bindings = bindgen::Builder::default()
        .header_contents(
            "xmldsig.h",
            "#include <xmlsec/xmlsec.h>\n#include <xmlsec/keys.h>\n#include <xmlsec/xmldsig.h>\n\
             #include <xmlsec/list.h>\n#include <xmlsec/buffer.h>\n#include <xmlsec/openssl/app.h>\n",
        )
        .clang_args(cflags)
        .allowlist_function("xmlSecDSigCtx(Create|Destroy|Verify)")
        .allowlist_function("xmlSecDSigReferenceCtxGetPreDigestBuffer")
        .allowlist_function("xmlSecOpenSSLAppKeyLoadMemory")
        .allowlist_function("xmlSecKeyDestroy")
        .allowlist_function("xmlSecPtrListGet(Size|Item)")
        .allowlist_function("xmlSecBufferGet(Data|Size)")
        .allowlist_type("xmlSecDSigCtx|xmlSecDSigReferenceCtx|xmlSecKey")
        .allowlist_var("XMLSEC_DSIG_FLAGS_STORE_SIGNEDINFO_REFERENCES")
        .allowlist_var("xmlSecDSigStatus_.*|xmlSecKeyDataFormat_.*")
        .layout_tests(true)
        .generate()
        .expect("bindings to libxmlsec1");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    bindings
        .write_to_file(out.join("xmlsec.rs"))
        .expect("write the bindings");
}
