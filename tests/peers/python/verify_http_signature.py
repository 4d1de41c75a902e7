"""Verify doorward's RFC 9421 HTTP Message Signature on a received request
with the `http_message_signatures` library, as an upstream app would.

Reads one JSON document on stdin:

    {
      "method": "GET",
      "url": "http://HOST[:PORT]/path?query",   # scheme + the Host header + the request target
      "headers": [["name", "value"], ...],      # as received, in order (or an object)
      "jwks": {"keys": [...]},                  # or "jwk": {...}, or "public_key": base64url raw Ed25519 key
      "label": "doorward",                      # optional, default "doorward"
      "require": ["@method", "@path", ...],     # optional: components the signature must cover
      "max_age": 300,                           # optional: seconds since `created`
      "body": "..."                             # optional: the body received; then a covered
                                                # content-digest must match it (RFC 9530)
    }

The key is looked up by the signature's `keyid`; the algorithm follows from
the key (OKP/Ed25519: ed25519, EC/P-256: ecdsa-p256-sha256).

Exit 0: JSON on stdout: {"label", "parameters", "covered": {component: value}}.
Exit 1: the signature does not verify; the reason on stderr, with the
        signature base this library computed when it got that far.
Exit 2: the input document is unusable.
"""

import base64
import datetime
import hashlib
import json
import sys
import warnings

import http_sf
import requests
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from http_message_signatures import (
    HTTPMessageSignaturesException,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    algorithms,
)
from http_message_signatures.signatures import SignatureVerifyWarning


class Unusable(Exception):
    """The input document is wrong (exit 2), as opposed to a bad signature."""


def b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_from_jwk(jwk: dict):
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty == "OKP" and crv == "Ed25519":
        return algorithms.ED25519, ed25519.Ed25519PublicKey.from_public_bytes(b64url(jwk["x"]))
    if kty == "EC" and crv == "P-256":
        numbers = ec.EllipticCurvePublicNumbers(
            int.from_bytes(b64url(jwk["x"]), "big"), int.from_bytes(b64url(jwk["y"]), "big"), ec.SECP256R1()
        )
        return algorithms.ECDSA_P256_SHA256, numbers.public_key()
    raise Unusable(f"unsupported JWK kty={kty!r} crv={crv!r}")


class KeyResolver(HTTPSignatureKeyResolver):
    """Public keys by key id; `None` (any id) for a bare raw key."""

    def __init__(self, keys: dict):
        self.keys = keys

    def resolve_public_key(self, key_id: str):
        entry = self.keys.get(key_id) or self.keys.get(None)
        return entry[1] if entry else None

    def resolve_private_key(self, key_id: str):
        raise NotImplementedError("verification only")


def load_keys(doc: dict) -> dict:
    if "jwks" in doc:
        jwks = doc["jwks"].get("keys", [])
    elif "jwk" in doc:
        jwks = [doc["jwk"]]
    elif "public_key" in doc:
        raw = ed25519.Ed25519PublicKey.from_public_bytes(b64url(doc["public_key"]))
        return {None: (algorithms.ED25519, raw)}
    else:
        raise Unusable('give "jwks", "jwk" or "public_key"')
    return {jwk.get("kid"): key_from_jwk(jwk) for jwk in jwks}


def header_pairs(headers) -> list:
    pairs = headers.items() if isinstance(headers, dict) else headers
    return [(str(name), str(value)) for name, value in pairs]


def signed_key_id(pairs: list, label: str) -> str:
    """The `keyid` of signature `label` in Signature-Input (all lines combined)."""
    lines = [value for name, value in pairs if name.lower() == "signature-input"]
    if not lines:
        raise HTTPMessageSignaturesException('no "Signature-Input" header')
    parsed = http_sf.parse(", ".join(lines).encode(), tltype="dictionary")
    if label not in parsed:
        raise HTTPMessageSignaturesException(f'no signature labelled "{label}" in Signature-Input')
    _, params = parsed[label]
    key_id = params.get("keyid")
    if not isinstance(key_id, str):
        raise HTTPMessageSignaturesException(f'signature "{label}" has no keyid')
    return key_id


def unquoted(component: str) -> str:
    return component[1:-1] if component.startswith('"') and component.endswith('"') else component


def main() -> int:
    try:
        doc = json.load(sys.stdin)
        method, url = doc["method"], doc["url"]
        pairs = header_pairs(doc["headers"])
        keys = load_keys(doc)
    except (ValueError, KeyError, TypeError, AttributeError, Unusable) as e:
        print(f"unusable input: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    label = doc.get("label", "doorward")
    required = doc.get("require", [])
    max_age = datetime.timedelta(seconds=doc.get("max_age", 300))

    # Repeated field lines are one field whose values are joined with ", "
    # (RFC 9110 5.3), which is also what RFC 9421 2.1 signs.
    combined: dict = {}
    for name, value in pairs:
        key = name.lower()
        combined[key] = (combined[key][0], f"{combined[key][1]}, {value}") if key in combined else (name, value)
    request = requests.Request(method, url, headers=dict(combined.values())).prepare()

    verifier = None
    try:
        key_id = signed_key_id(pairs, label)
        if key_id not in keys and None not in keys:
            raise HTTPMessageSignaturesException(f"no key with id {key_id!r} in the given keys")
        algorithm = (keys.get(key_id) or keys[None])[0]
        verifier = HTTPMessageVerifier(signature_algorithm=algorithm, key_resolver=KeyResolver(keys))
        # Selecting by label alone is what a verifier that knows the label
        # does; the library warns because labels are not signed.
        verifier.allow_label_only_selection = True
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SignatureVerifyWarning)
            results = verifier.verify(request, expect_label=label, require_components=required, max_age=max_age)
    except HTTPMessageSignaturesException as e:
        # A bad signature comes as cryptography's InvalidSignature (no text).
        reason = str(e) or "the signature does not match the signature base"
        print(f"{type(e).__name__}: {reason}", file=sys.stderr)
        base = library_base(verifier, request, pairs, label)
        if base is not None:
            print(f"signature base computed by http_message_signatures:\n{base}", file=sys.stderr)
        return 1
    result = results[0]
    covered = {unquoted(k): v for k, v in result.covered_components.items()}
    # An upstream that receives a body checks that the signed digest is the
    # body's (RFC 9530), or the signature says nothing about the body.
    if doc.get("body"):
        body = doc["body"].encode()
        digest = covered.get("content-digest")
        if digest is None:
            print("the body is not covered by the signature (no content-digest)", file=sys.stderr)
            return 1
        want = "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"
        if digest != want:
            print("content-digest does not match the body", file=sys.stderr)
            return 1
    json.dump(
        {
            "label": result.label,
            "parameters": result.parameters,
            "covered": covered,
        },
        sys.stdout,
        sort_keys=True,
    )
    print()
    return 0


def library_base(verifier, request, pairs, label):
    """The signature base the library builds for this request, for showing
    next to doorward's when they disagree (uses a private method)."""
    if verifier is None:
        return None
    try:
        lines = [value for name, value in pairs if name.lower() == "signature-input"]
        inputs = verifier._parse_signature_dictionary(", ".join(lines))
        node = inputs[label]
        base, _, _ = verifier._build_signature_base(
            request, covered_component_ids=list(node), signature_params=node.params
        )
        return base
    except Exception:  # only a diagnostic
        return None


if __name__ == "__main__":
    sys.exit(main())
