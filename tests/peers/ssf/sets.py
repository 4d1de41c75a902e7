"""Signing keys and Security Event Tokens (RFC 8417) for the test transmitter.

The transmitter's keys (RSA 2048 for RS*/PS*, P-256 for ES256), their JWKS,
rotation, and the one function that turns an emit request (with its attack
overrides) into a compact JWS. The JWS is assembled here by hand rather than
with PyJWT so that the attack tokens (``alg: none``, HS256 keyed with the
public key, a published ``kid`` over another key's signature) can be made at
all: PyJWT rightly refuses to sign most of them.
"""

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

SET_TYP = "secevent+jwt"

SSF = "https://schemas.openid.net/secevent/ssf/event-type/"
CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
RISC = "https://schemas.openid.net/secevent/risc/event-type/"

VERIFICATION = SSF + "verification"
STREAM_UPDATED = SSF + "stream-updated"

# What a stream may request. The two SSF control events are not listed: they
# are always delivered, whatever the stream asked for (SSF 1.0 §8.1.4, §8.1.5).
EVENTS_SUPPORTED = [CAEP + name for name in (
    "session-revoked", "token-claims-change", "credential-change", "assurance-level-change",
    "device-compliance-change", "session-established", "session-presented", "risk-level-change",
)] + [RISC + name for name in (
    "account-credential-change-required", "account-purged", "account-disabled", "account-enabled",
    "identifier-changed", "identifier-recycled", "credential-compromise", "opt-in",
    "opt-out-initiated", "opt-out-cancelled", "opt-out-effective", "recovery-activated",
    "recovery-information-changed", "sessions-revoked",
)]

RSA_ALGS = {"RS256": hashes.SHA256, "RS384": hashes.SHA384, "RS512": hashes.SHA512, "PS256": hashes.SHA256}
ALGS = set(RSA_ALGS) | {"ES256", "HS256", "none"}


class BadRequest(Exception):
    """A control request the transmitter cannot honour (answered with 400)."""


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _uint(value, length=None):
    length = length or (value.bit_length() + 7) // 8
    return b64url(value.to_bytes(length, "big"))


class SigningKey:
    """One private key with its kid; `kind` is "RSA" or "EC"."""

    def __init__(self, kind, kid):
        self.kind, self.kid = kind, kid
        if kind == "RSA":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())

    def jwk(self):
        numbers = self.private.public_key().public_numbers()
        if self.kind == "RSA":
            return {"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256",
                    "n": _uint(numbers.n), "e": _uint(numbers.e)}
        return {"kty": "EC", "kid": self.kid, "use": "sig", "alg": "ES256", "crv": "P-256",
                "x": _uint(numbers.x, 32), "y": _uint(numbers.y, 32)}

    def public_pem(self):
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, alg, data):
        if alg in RSA_ALGS and self.kind == "RSA":
            digest = RSA_ALGS[alg]()
            pad = (padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
                   if alg.startswith("PS") else padding.PKCS1v15())
            return self.private.sign(data, pad, digest)
        if alg == "ES256" and self.kind == "EC":
            r, s = decode_dss_signature(self.private.sign(data, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        raise BadRequest(f"a {self.kind} key cannot sign {alg}")


def key_kind(alg):
    return "EC" if alg == "ES256" else "RSA"


class KeyRing:
    """The published signing keys: the current pair signs, older ones stay
    published after a rotation until retired. Two unpublished keys per kind
    serve the attacks: `stranger` (own kid, not in the JWKS) and `impostor`
    (signs under a published kid)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._serial = 0
        self._published = []  # newest first
        self._current = {}
        self._stranger = {kind: SigningKey(kind, f"unknown-{kind.lower()}-{secrets.token_hex(4)}")
                          for kind in ("RSA", "EC")}
        self._impostor = {kind: SigningKey(kind, "impostor") for kind in ("RSA", "EC")}
        self.rotate(retire_old=True)

    def rotate(self, retire_old=False):
        with self._lock:
            self._serial += 1
            fresh = {kind: SigningKey(kind, f"{kind.lower()}-{self._serial}-{secrets.token_hex(4)}")
                     for kind in ("RSA", "EC")}
            self._published = list(fresh.values()) + ([] if retire_old else self._published)
            self._current = fresh
            return self.kids()

    def kids(self):
        return {"RS256": self._current["RSA"].kid, "ES256": self._current["EC"].kid}

    def current(self, kind):
        with self._lock:
            return self._current[kind]

    def jwks(self):
        with self._lock:
            return {"keys": [key.jwk() for key in self._published]}

    def stranger(self, kind):
        return self._stranger[kind]

    def impostor(self, kind):
        return self._impostor[kind]


def compact(header, claims, alg, key=None, hmac_secret=None):
    """A compact JWS over `header` and `claims` (both JSON-serialised as given)."""
    signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
                     + b64url(json.dumps(claims, separators=(",", ":")).encode())).encode("ascii")
    if alg == "none":
        signature = b""
    elif alg == "HS256":
        signature = hmac.new(hmac_secret, signing_input, hashlib.sha256).digest()
    else:
        signature = key.sign(alg, signing_input)
    return signing_input.decode("ascii") + "." + b64url(signature)


def _override(target, request, names):
    """Copies each of `names` present in `request` into `target`; a JSON null
    removes the member, so a test can send a SET without, say, `iss`."""
    for name in names:
        if name in request:
            if request[name] is None:
                target.pop(name, None)
            else:
                target[name] = request[name]


def build_set(ring, issuer, aud, request):
    """(jti, token) for an emit request: `event`, `payload`, `sub_id`, and the
    overrides `iss`, `aud`, `iat`, `jti`, `events`, `extra_claims`, `typ`,
    `alg`, `kid`, `sign_with` (`unknown` | `wrong`) and `hmac_secret`."""
    claims = {"iss": issuer, "jti": secrets.token_hex(16), "iat": int(time.time())}
    if aud is not None:
        claims["aud"] = aud
    if request.get("sub_id") is not None:
        claims["sub_id"] = request["sub_id"]
    if "events" in request:
        claims["events"] = request["events"]
    else:
        event = request.get("event")
        if not isinstance(event, str) or not event:
            raise BadRequest("`event` (an event type URI) or `events` is required")
        payload = request.get("payload", {})
        if not isinstance(payload, dict):
            raise BadRequest("`payload` must be an object")
        claims["events"] = {event: payload}
    _override(claims, request, ("iss", "aud", "iat", "jti"))
    extra = request.get("extra_claims") or {}
    if not isinstance(extra, dict):
        raise BadRequest("`extra_claims` must be an object")
    _override(claims, extra, list(extra))

    alg = request.get("alg", "RS256")
    if alg not in ALGS:
        raise BadRequest(f"`alg` must be one of {sorted(ALGS)}")
    kind = key_kind(alg)
    key, kid = ring.current(kind), ring.current(kind).kid
    sign_with = request.get("sign_with")
    if sign_with == "unknown":
        key = ring.stranger(kind)
        kid = key.kid
    elif sign_with == "wrong":
        key = ring.impostor(kind)
    elif sign_with is not None:
        raise BadRequest("`sign_with` must be `unknown` or `wrong`")
    header = {"alg": alg, "typ": SET_TYP, "kid": kid}
    _override(header, request, ("typ", "kid"))
    # HS256 is the algorithm-confusion attack: the MAC key is the public key
    # the receiver already holds, as PEM.
    secret = request.get("hmac_secret")
    secret = secret.encode() if isinstance(secret, str) else ring.current("RSA").public_pem()
    token = compact(header, claims, alg, key, secret)
    return claims.get("jti"), token


def control_set(ring, issuer, aud, stream_id, event, payload):
    """A transmitter-made SET about the stream itself (verification,
    stream-updated): its subject is the stream (SSF 1.0 §8.1.4.1)."""
    request = {"event": event, "payload": payload, "sub_id": {"format": "opaque", "id": stream_id}}
    return build_set(ring, issuer, aud, request)
