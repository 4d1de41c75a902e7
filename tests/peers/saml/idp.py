#!/usr/bin/env python3
"""Loopback SAML 2.0 identity provider for doorward's end-to-end tests.

A thin wrapper around pysaml2's IdP (``saml2.server.Server``; exact version
pinned in requirements.txt). pysaml2 parses and checks the requests, builds,
signs (through the xmlsec1 command) and encrypts the responses; this file only
holds the users, the sessions and the HTTP plumbing. All configuration comes
from environment variables; see README.md next to this file. Test use only,
never expose it beyond 127.0.0.1.

stdout carries exactly one line, a JSON object with the endpoints, printed once
the server is listening. Everything else goes to stderr.
"""

import base64
import datetime
import html
import json
import logging
import os
import secrets
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
import urllib.parse
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape as xml_escape, quoteattr

# pysaml2 logs through `logging`; keep all of it on stderr, before any import
# can configure anything else.
logging.basicConfig(
    stream=sys.stderr,
    level=getattr(logging, os.environ.get("SAML_LOG_LEVEL", "WARNING").upper(), logging.WARNING),
    format="saml-peer: %(levelname)s %(name)s: %(message)s",
)

# pysaml2 7.5.5 touches cryptography's deprecated CFB mode at import.
warnings.filterwarnings("ignore", message="CFB has been moved")

# Start-up time: pysaml2 compiles its SAML XSD schema set at import
# (saml2.xml.schema, about 0.6 s). It is only needed to check incoming
# XML-signed messages (POST-binding signed requests, SOAP answers), so build it
# on first use instead: saml2.xml.schema gets a lazy stand-in for
# xmlschema.XMLSchema while it is imported.
import xmlschema  # noqa: E402

_RealXMLSchema = xmlschema.XMLSchema


class _LazyXMLSchema:
    def __init__(self, *args, **kwargs):
        self._args, self._kwargs, self._real = args, kwargs, None
        self._lock = threading.Lock()

    def __getattr__(self, name):
        with self._lock:
            if self._real is None:
                self._real = _RealXMLSchema(*self._args, **self._kwargs)
        return getattr(self._real, name)


xmlschema.XMLSchema = _LazyXMLSchema
try:
    import saml2.xml.schema  # noqa: E402,F401
finally:
    xmlschema.XMLSchema = _RealXMLSchema

import requests  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.exceptions import InvalidSignature  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

import saml2  # noqa: E402
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, BINDING_SOAP, saml, samlp, xmldsig  # noqa: E402
from saml2.assertion import Policy, authn_statement  # noqa: E402
from saml2.attribute_converter import AttributeConverter  # noqa: E402
from saml2.config import IdPConfig  # noqa: E402
from saml2.metadata import entity_descriptor  # noqa: E402
from saml2.s_utils import do_ava, factory  # noqa: E402
from saml2.server import Server  # noqa: E402
from saml2.sigver import pre_encryption_part  # noqa: E402
from saml2.time_util import in_a_while  # noqa: E402
from saml2 import md, xmlenc  # noqa: E402
from saml2.xmldsig import KeyInfo, X509Certificate, X509Data  # noqa: E402


def log(message):
    sys.stderr.write(f"saml-peer: {message}\n")
    sys.stderr.flush()


def fail(message):
    log(message)
    sys.exit(2)


# --------------------------------------------------------------------------
# Environment

def env(name, default=""):
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def env_int(name, default, lo=0, hi=10**9):
    raw = env(name, None)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        fail(f"{name} must be an integer, got {raw!r}")
    if not lo <= value <= hi:
        fail(f"{name} must be in [{lo}, {hi}], got {value}")
    return value


def env_json(name, default):
    raw = env(name, None)
    if raw is None:
        return default
    try:
        return json.loads(raw)
    except ValueError as err:
        fail(f"{name} is not valid JSON: {err}")


NAME_ID_FORMATS = {
    "unspecified": saml.NAMEID_FORMAT_UNSPECIFIED,
    "email": saml.NAMEID_FORMAT_EMAILADDRESS,
    "emailaddress": saml.NAMEID_FORMAT_EMAILADDRESS,
    "persistent": saml.NAMEID_FORMAT_PERSISTENT,
    "transient": saml.NAMEID_FORMAT_TRANSIENT,
}
ATTR_NAME_FORMATS = {
    "basic": saml.NAME_FORMAT_BASIC,
    "uri": saml.NAME_FORMAT_URI,
    "unspecified": saml.NAME_FORMAT_UNSPECIFIED,
}
SIGN_ALGS = {
    "rsa-sha1": xmldsig.SIG_RSA_SHA1,
    "rsa-sha256": xmldsig.SIG_RSA_SHA256,
    "rsa-sha384": xmldsig.SIG_RSA_SHA384,
    "rsa-sha512": xmldsig.SIG_RSA_SHA512,
}
DIGEST_ALGS = {
    "sha1": xmldsig.DIGEST_SHA1,
    "sha256": xmldsig.DIGEST_SHA256,
    "sha384": xmldsig.DIGEST_SHA384,
    "sha512": xmldsig.DIGEST_SHA512,
}
# name -> (EncryptionMethod algorithm, xmlsec1 --session-key type)
ENCRYPTION_ALGS = {
    "aes128-cbc": ("http://www.w3.org/2001/04/xmlenc#aes128-cbc", "aes-128"),
    "aes256-cbc": ("http://www.w3.org/2001/04/xmlenc#aes256-cbc", "aes-256"),
    "aes128-gcm": ("http://www.w3.org/2009/xmlenc11#aes128-gcm", "aes-128"),
    "aes256-gcm": ("http://www.w3.org/2009/xmlenc11#aes256-gcm", "aes-256"),
    "tripledes-cbc": ("http://www.w3.org/2001/04/xmlenc#tripledes-cbc", "des-192"),
}
KEY_TRANSPORT_ALGS = {
    "rsa-oaep-mgf1p": "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
    "rsa-1_5": "http://www.w3.org/2001/04/xmlenc#rsa-1_5",
}

# Response options: from the environment at start, changeable at run time
# through POST /__test/options (same keys, JSON values).
OPTION_DEFAULTS = {
    "sign": "assertion",                 # assertion | response | both | none
    "signature_alg": "rsa-sha256",
    "digest_alg": "sha256",
    "encrypt_assertion": False,
    "encryption_alg": "aes256-cbc",
    "key_transport_alg": "rsa-oaep-mgf1p",
    "name_id_format": "unspecified",
    "honor_name_id_policy": True,
    "assertion_lifetime": 300,           # seconds: Conditions / SubjectConfirmationData NotOnOrAfter
    "session_lifetime": 28800,           # seconds: AuthnStatement SessionNotOnOrAfter (0 = omit)
    "attribute_name_format": "auto",     # auto | basic | uri | unspecified | omit
    "want_authn_requests_signed": "auto",   # auto (SP metadata AuthnRequestsSigned) | true | false
    "want_logout_requests_signed": "auto",  # auto (SP metadata has a signing cert) | true | false
    "sign_logout": True,                 # sign the LogoutRequest/LogoutResponse this IdP sends
    "authn_context_class": None,         # answer this AuthnContextClassRef whatever was asked (None: honour the request)
    "authn_instant_age": 0,              # seconds: AuthnInstant this much before the login
}

# The class a user can do when their `authn_classes` does not say.
DEFAULT_AUTHN_CLASS = saml.AUTHN_PASSWORD_PROTECTED


def bool_value(name, raw):
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be a boolean (1/0/true/false), got {raw!r}")


def tri_value(name, raw):
    if str(raw).strip().lower() == "auto":
        return "auto"
    return bool_value(name, raw)


def check_options(opts):
    """Validate and normalise an options dict in place; raise ValueError."""
    out = dict(opts)
    if out["sign"] not in ("assertion", "response", "both", "none"):
        raise ValueError(f"sign must be assertion|response|both|none, got {out['sign']!r}")
    if out["signature_alg"] not in SIGN_ALGS:
        raise ValueError(f"signature_alg must be one of {sorted(SIGN_ALGS)}")
    if out["digest_alg"] not in DIGEST_ALGS:
        raise ValueError(f"digest_alg must be one of {sorted(DIGEST_ALGS)}")
    if out["encryption_alg"] not in ENCRYPTION_ALGS:
        raise ValueError(f"encryption_alg must be one of {sorted(ENCRYPTION_ALGS)}")
    if out["key_transport_alg"] not in KEY_TRANSPORT_ALGS:
        raise ValueError(f"key_transport_alg must be one of {sorted(KEY_TRANSPORT_ALGS)}")
    if out["attribute_name_format"] not in ("auto", "basic", "uri", "unspecified", "omit"):
        raise ValueError("attribute_name_format must be auto|basic|uri|unspecified|omit")
    resolve_name_id_format(out["name_id_format"])
    for key in ("encrypt_assertion", "honor_name_id_policy", "sign_logout"):
        out[key] = bool_value(key, out[key])
    for key in ("want_authn_requests_signed", "want_logout_requests_signed"):
        out[key] = tri_value(key, out[key])
    for key in ("assertion_lifetime", "session_lifetime", "authn_instant_age"):
        value = int(out[key])
        if value < 0 or (key == "assertion_lifetime" and value == 0):
            raise ValueError(f"{key} must be a positive number of seconds")
        out[key] = value
    forced = out["authn_context_class"]
    if forced is not None and (not isinstance(forced, str) or not forced.strip()):
        raise ValueError("authn_context_class must be a class URI, or null to honour the request")
    out["authn_context_class"] = forced.strip() if forced else None
    return out


def resolve_name_id_format(text):
    fmt = NAME_ID_FORMATS.get(str(text).lower())
    if fmt:
        return fmt
    if str(text).startswith("urn:"):
        return str(text)
    raise ValueError(f"name_id_format must be one of {sorted(NAME_ID_FORMATS)} or a full URN, got {text!r}")


def options_from_env():
    names = {
        "sign": "SAML_SIGN",
        "signature_alg": "SAML_SIGNATURE_ALG",
        "digest_alg": "SAML_DIGEST_ALG",
        "encrypt_assertion": "SAML_ENCRYPT_ASSERTION",
        "encryption_alg": "SAML_ENCRYPTION_ALG",
        "key_transport_alg": "SAML_KEY_TRANSPORT_ALG",
        "name_id_format": "SAML_NAME_ID_FORMAT",
        "honor_name_id_policy": "SAML_HONOR_NAME_ID_POLICY",
        "assertion_lifetime": "SAML_ASSERTION_LIFETIME",
        "session_lifetime": "SAML_SESSION_LIFETIME",
        "attribute_name_format": "SAML_ATTRIBUTE_NAME_FORMAT",
        "want_authn_requests_signed": "SAML_WANT_AUTHN_REQUESTS_SIGNED",
        "want_logout_requests_signed": "SAML_WANT_LOGOUT_REQUESTS_SIGNED",
        "sign_logout": "SAML_SIGN_LOGOUT",
        "authn_context_class": "SAML_AUTHN_CONTEXT_CLASS",
        "authn_instant_age": "SAML_AUTHN_INSTANT_AGE",
    }
    opts = dict(OPTION_DEFAULTS)
    for key, var in names.items():
        raw = env(var, None)
        if raw is not None:
            opts[key] = raw.strip().lower() if key not in ("name_id_format", "authn_context_class") else raw.strip()
    if opts["authn_context_class"] == "":
        opts["authn_context_class"] = None
    try:
        return check_options(opts)
    except (ValueError, TypeError) as err:
        fail(f"bad option: {err}")


# --------------------------------------------------------------------------
# Keys

def make_key_and_cert(common_name):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def cert_b64(pem):
    """The base64 body of a PEM certificate (what X509Certificate holds)."""
    if isinstance(pem, bytes):
        pem = pem.decode("ascii")
    lines = [ln.strip() for ln in pem.strip().splitlines()]
    return "".join(ln for ln in lines if ln and not ln.startswith("-----"))


def pem_from_b64(b64):
    body = "".join(b64.split())
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


# --------------------------------------------------------------------------
# SP metadata: XML text, a JSON description (object or array), or a file
# holding either.

BINDING_NAMES = {"redirect": BINDING_HTTP_REDIRECT, "post": BINDING_HTTP_POST, "soap": BINDING_SOAP}


def sp_json_to_xml(desc):
    if not isinstance(desc, dict):
        raise ValueError("an SP description must be a JSON object")
    entity_id = desc.get("entity_id")
    if not entity_id:
        raise ValueError("an SP description needs entity_id")
    acs = desc.get("acs_url") or desc.get("acs_urls")
    if not acs:
        raise ValueError(f"SP {entity_id}: acs_url is required")
    acs_urls = [acs] if isinstance(acs, str) else list(acs)
    slo_url = desc.get("slo_url")
    slo_bindings = desc.get("slo_bindings", ["redirect", "post"])
    soap_slo_url = desc.get("soap_slo_url")
    signing = desc.get("signing_cert") or desc.get("signing_certs") or []
    signing = [signing] if isinstance(signing, str) else list(signing)
    encryption = desc.get("encryption_cert", signing[0] if signing else None)
    authn_signed = bool(desc.get("authn_requests_signed", bool(signing)))
    want_signed = bool(desc.get("want_assertions_signed", True))
    nid_formats = desc.get("name_id_formats", [])

    def key_descriptor(use, pem):
        return (
            f'<md:KeyDescriptor use="{use}"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>'
            f"{cert_b64(pem)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
        )

    parts = [
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
        f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID={quoteattr(entity_id)}>',
        f'<md:SPSSODescriptor AuthnRequestsSigned="{str(authn_signed).lower()}" '
        f'WantAssertionsSigned="{str(want_signed).lower()}" '
        'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">',
    ]
    parts += [key_descriptor("signing", pem) for pem in signing]
    if encryption:
        parts.append(key_descriptor("encryption", encryption))
    if slo_url:
        for name in slo_bindings:
            if name not in BINDING_NAMES:
                raise ValueError(f"SP {entity_id}: unknown slo binding {name!r}")
            if name == "soap":
                continue
            parts.append(f'<md:SingleLogoutService Binding="{BINDING_NAMES[name]}" Location={quoteattr(slo_url)}/>')
    if soap_slo_url:
        parts.append(f'<md:SingleLogoutService Binding="{BINDING_SOAP}" Location={quoteattr(soap_slo_url)}/>')
    for fmt in nid_formats:
        parts.append(f"<md:NameIDFormat>{xml_escape(resolve_name_id_format(fmt))}</md:NameIDFormat>")
    for i, url in enumerate(acs_urls):
        default = ' isDefault="true"' if i == 0 else ""
        parts.append(
            f'<md:AssertionConsumerService Binding="{BINDING_HTTP_POST}" Location={quoteattr(url)} index="{i}"{default}/>'
        )
    parts.append("</md:SPSSODescriptor></md:EntityDescriptor>")
    return "".join(parts)


def sp_metadata_from_text(text):
    """-> list of SP metadata XML strings."""
    text = text.strip()
    if text.startswith("<"):
        return [text]
    if text.startswith("{") or text.startswith("["):
        desc = json.loads(text)
        descs = desc if isinstance(desc, list) else [desc]
        # Each item: a JSON SP description, or a string holding SP metadata XML.
        return [d.strip() if isinstance(d, str) else sp_json_to_xml(d) for d in descs]
    if os.path.isfile(text):
        with open(text, encoding="utf-8") as fh:
            return sp_metadata_from_text(fh.read())
    raise ValueError("expected SP metadata XML, a JSON SP description, or a path to a file holding either")


def entity_id_of(xml_text):
    import xml.etree.ElementTree as ET  # the metadata comes from the test itself

    root = ET.fromstring(xml_text)
    return root.get("entityID")


# --------------------------------------------------------------------------
# Attributes: emitted verbatim (name = the key in SAML_USERS), with a
# NameFormat and optional FriendlyName.

ATTR_META = {}  # attribute name -> {"name_format": URI or None, "friendly_name": str or None}; per response


class VerbatimConverter(AttributeConverter):
    """Turns {name: [values]} into saml.Attribute elements, names as given."""

    def __init__(self):
        super().__init__(saml.NAME_FORMAT_URI)

    def to_(self, attrvals):
        attributes = []
        for name, values in attrvals.items():
            meta = ATTR_META.get(name, {})
            attributes.append(
                factory(
                    saml.Attribute,
                    name=name,
                    name_format=meta.get("name_format"),
                    friendly_name=meta.get("friendly_name"),
                    attribute_value=do_ava(values),
                )
            )
        return attributes


class ReleaseEverything(Policy):
    """Release every attribute of the user, whatever the SP metadata requests."""

    def restrict(self, ava, sp_entity_id, metadata=None):
        return dict(ava)


def attribute_spec(user):
    """-> (ava {name: [str]}, meta {name: {...}}) for one user record."""
    ava, meta = {}, {}
    mode = STATE.options["attribute_name_format"]
    for name, spec in (user.get("attributes") or {}).items():
        name_format = None
        friendly = None
        if isinstance(spec, dict):
            values = spec.get("values", [])
            fmt = spec.get("name_format")
            if fmt:
                name_format = ATTR_NAME_FORMATS.get(fmt, fmt)
            friendly = spec.get("friendly_name")
        else:
            values = spec
        if not isinstance(values, list):
            values = [values]
        values = [v if isinstance(v, str) else json.dumps(v) if not isinstance(v, (int, float)) else str(v)
                  for v in values]
        if name_format is None:
            if mode == "auto":
                name_format = saml.NAME_FORMAT_URI if ":" in name else saml.NAME_FORMAT_BASIC
            elif mode != "omit":
                name_format = ATTR_NAME_FORMATS[mode]
        ava[name] = values
        meta[name] = {"name_format": name_format, "friendly_name": friendly}
    return ava, meta


# --------------------------------------------------------------------------
# The pysaml2 server, rebuilt whenever the SPs or the signing key change.

class TestIdP(Server):
    """pysaml2's Server with a configurable assertion encryption algorithm
    (pysaml2 itself always encrypts with 3DES-CBC)."""

    def _encrypt_assertion(self, encrypt_cert, sp_entity_id, response, node_xpath=None):
        msg_enc, session_key = ENCRYPTION_ALGS[STATE.options["encryption_alg"]]
        key_enc = KEY_TRANSPORT_ALGS[STATE.options["key_transport_alg"]]
        certs = [(None, encrypt_cert)] if encrypt_cert else self.metadata.certs(sp_entity_id, "any", "encryption")
        if not certs:
            raise ValueError(f"no encryption certificate for {sp_entity_id} in its metadata")
        _name, cert = certs[0]
        path = os.path.join(STATE.tmpdir, f"enc-{secrets.token_hex(6)}.pem")
        with open(path, "w") as fh:
            fh.write(pem_from_b64(cert_b64(cert)))
        try:
            template = pre_encryption_part(msg_enc=msg_enc, key_enc=key_enc, encrypt_cert=cert_b64(cert))
            return self.sec.encrypt_assertion(response, path, template, session_key, node_xpath)
        finally:
            os.unlink(path)


class State:
    def __init__(self):
        self.lock = threading.RLock()
        self.options = {}
        self.users = {}
        self.sp_xml = {}          # entity id -> metadata XML
        self.keys = []            # [{"key": path, "cert": path, "cert_pem": bytes}], first = current
        self.server = None
        self.policy = None
        self.pending = {}         # login request id -> pending AuthnRequest
        self.sessions = {}        # IdP session id -> {"user", "created", "sp_sessions": [...]}
        self.outgoing_logout = {} # LogoutRequest id -> {"sp", "user", "binding"}
        self.events = []
        self.tmpdir = None
        self.base = None
        self.entity_id = None

    def event(self, kind, **fields):
        record = {"seq": len(self.events) + 1, "time": int(time.time()), "type": kind, **fields}
        self.events.append(record)
        log(f"event {json.dumps(record)}")
        return record


STATE = State()


def build_server():
    """(Re)build the pysaml2 Server from the current keys and SP metadata."""
    key = STATE.keys[0]
    conf = {
        "entityid": STATE.entity_id,
        "xmlsec_binary": XMLSEC1,
        "key_file": key["key"],
        "cert_file": key["cert"],
        "delete_tmpfiles": True,
        "accepted_time_diff": env_int("SAML_CLOCK_SKEW", 60),
        "allow_unknown_attributes": True,
        "metadata": {"inline": list(STATE.sp_xml.values())} if STATE.sp_xml else {},
        "service": {
            "idp": {
                "name": "doorward test IdP",
                "endpoints": {
                    "single_sign_on_service": [
                        (f"{STATE.base}/sso", BINDING_HTTP_REDIRECT),
                        (f"{STATE.base}/sso", BINDING_HTTP_POST),
                    ],
                    "single_logout_service": [
                        (f"{STATE.base}/slo", BINDING_HTTP_REDIRECT),
                        (f"{STATE.base}/slo", BINDING_HTTP_POST),
                    ],
                },
                "name_id_format": [
                    saml.NAMEID_FORMAT_UNSPECIFIED,
                    saml.NAMEID_FORMAT_EMAILADDRESS,
                    saml.NAMEID_FORMAT_PERSISTENT,
                    saml.NAMEID_FORMAT_TRANSIENT,
                ],
                # Request signatures are checked by this wrapper, per SP (see
                # check_request_signature); pysaml2 still verifies any
                # enveloped XML signature it finds.
                "want_authn_requests_signed": False,
                "sign_response": False,
                "sign_assertion": False,
            }
        },
    }
    config = IdPConfig().load(conf)
    server = TestIdP(config=config)
    server.config.attribute_converters = [VerbatimConverter()]
    STATE.server = server


def release_policy():
    opts = STATE.options
    policy = ReleaseEverything(
        restrictions={
            "default": {
                "lifetime": {"seconds": opts["assertion_lifetime"]},
                "name_form": saml.NAME_FORMAT_URI,
            }
        },
        mds=STATE.server.metadata,
    )
    policy.acs = STATE.server.config.attribute_converters
    return policy


def idp_metadata_xml():
    ed = entity_descriptor(STATE.server.config)
    ed.extensions = None  # pysaml2's algorithm-support list (md5, dsa, ...): noise, real IdPs rarely publish it
    # Extra signing certificates (older keys still published after a rotation).
    descriptor = ed.idpsso_descriptor
    for key in STATE.keys[1:]:
        descriptor.key_descriptor.append(
            md.KeyDescriptor(
                use="signing",
                key_info=KeyInfo(x509_data=[X509Data(x509_certificate=X509Certificate(text=cert_b64(key["cert_pem"])))]),
            )
        )
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + str(ed)


# --------------------------------------------------------------------------
# SP facts from the metadata

def sp_descriptor(sp):
    return STATE.server.metadata[sp]["spsso_descriptor"][0]


def sp_wants_signed_authn(sp):
    opt = STATE.options["want_authn_requests_signed"]
    if opt != "auto":
        return opt
    value = sp_descriptor(sp).get("authn_requests_signed")
    return str(value).lower() == "true"


def sp_signing_certs(sp):
    return [cert for _name, cert in STATE.server.metadata.certs(sp, "spsso", "signing")]


def sp_wants_signed_logout(sp):
    opt = STATE.options["want_logout_requests_signed"]
    if opt != "auto":
        return opt
    return bool(sp_signing_certs(sp))


def sp_slo_endpoints(sp):
    """-> {binding URI: (location, response location)}, first of each binding."""
    out = {}
    for srv in sp_descriptor(sp).get("single_logout_service", []):
        binding = srv.get("binding")
        if binding not in out:
            out[binding] = (srv.get("location"), srv.get("response_location") or srv.get("location"))
    return out


def sp_default_acs(sp):
    services = sp_descriptor(sp).get("assertion_consumer_service", [])
    posts = [s for s in services if s.get("binding") == BINDING_HTTP_POST]
    if not posts:
        raise ValueError(f"SP {sp} has no HTTP-POST AssertionConsumerService")
    for s in posts:
        if str(s.get("is_default")).lower() == "true":
            return s["location"]
    return posts[0]["location"]


# --------------------------------------------------------------------------
# HTTP-Redirect binding signatures, verified over the query string exactly as
# received (SAML bindings 3.4.4.1), with the SP's signing certificates.

REDIRECT_SIG_ALGS = {
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1": ("rsa", hashes.SHA1),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": ("rsa", hashes.SHA256),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": ("rsa", hashes.SHA384),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": ("rsa", hashes.SHA512),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": ("ec", hashes.SHA256),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": ("ec", hashes.SHA384),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": ("ec", hashes.SHA512),
}


def raw_query_pairs(raw_query):
    """-> {name: raw (still percent-encoded) value}, first occurrence wins."""
    out = {}
    for piece in raw_query.split("&"):
        if not piece:
            continue
        name, _, value = piece.partition("=")
        out.setdefault(urllib.parse.unquote_plus(name), value)
    return out


def verify_redirect_signature(raw_query, msg_param, certs):
    """-> "valid" | "absent"; raises ValueError when present but bad."""
    raw = raw_query_pairs(raw_query)
    if "Signature" not in raw:
        return "absent"
    if "SigAlg" not in raw:
        raise ValueError("Signature without SigAlg")
    sigalg = urllib.parse.unquote_plus(raw["SigAlg"])
    if sigalg not in REDIRECT_SIG_ALGS:
        raise ValueError(f"unsupported SigAlg {sigalg}")
    kind, hash_cls = REDIRECT_SIG_ALGS[sigalg]
    signed = f"{msg_param}={raw[msg_param]}"
    if "RelayState" in raw:
        signed += f"&RelayState={raw['RelayState']}"
    signed += f"&SigAlg={raw['SigAlg']}"
    try:
        signature = base64.b64decode(urllib.parse.unquote_plus(raw["Signature"]), validate=False)
    except ValueError as err:
        raise ValueError(f"Signature is not base64: {err}")
    if not certs:
        raise ValueError("request is signed but the SP metadata has no signing certificate")
    for cert in certs:
        public_key = x509.load_pem_x509_certificate(pem_from_b64(cert_b64(cert)).encode()).public_key()
        try:
            if kind == "rsa" and isinstance(public_key, rsa.RSAPublicKey):
                public_key.verify(signature, signed.encode("ascii"), padding.PKCS1v15(), hash_cls())
                return "valid"
            if kind == "ec" and isinstance(public_key, ec.EllipticCurvePublicKey):
                public_key.verify(signature, signed.encode("ascii"), ec.ECDSA(hash_cls()))
                return "valid"
        except InvalidSignature:
            continue
    raise ValueError("HTTP-Redirect signature does not verify with any SP signing certificate")


# --------------------------------------------------------------------------
# HTML

PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title></head>
<body{onload}>
{body}
</body></html>
"""


def page(title, body, autosubmit=False):
    onload = ' onload="document.forms[0].submit()"' if autosubmit else ""
    return PAGE.format(title=html.escape(title), onload=onload, body=body)


def post_form_html(action, fields):
    inputs = "\n".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in fields.items()
    )
    body = (
        f'<form id="saml-post" method="post" action="{html.escape(action)}">\n{inputs}\n'
        '<noscript><button type="submit">Continue</button></noscript>\n</form>'
    )
    return page("SAML HTTP-POST", body, autosubmit=True)


def login_form_html(request_id, sp, error=None):
    err = f'<p id="error">{html.escape(error)}</p>\n' if error else ""
    body = (
        f"<h1>doorward test IdP</h1>\n<p>Sign in to {html.escape(sp)}</p>\n{err}"
        f'<form id="login" method="post" action="{html.escape(STATE.base)}/login">\n'
        f'<input type="hidden" name="request_id" value="{html.escape(request_id)}">\n'
        '<label>Username <input type="text" name="username" autofocus></label>\n'
        '<label>Password <input type="password" name="password"></label>\n'
        '<button type="submit" name="action" value="login">Sign in</button>\n'
        '<button type="submit" name="action" value="cancel">Cancel</button>\n'
        "</form>"
    )
    return page("Sign in", body)


# --------------------------------------------------------------------------
# Responses

def sign_flags():
    mode = STATE.options["sign"]
    return mode in ("assertion", "both"), mode in ("response", "both")


def resolve_nid_format(user, requested):
    opts = STATE.options
    if opts["honor_name_id_policy"] and requested and requested != saml.NAMEID_FORMAT_UNSPECIFIED:
        return requested
    if user.get("name_id_format"):
        return resolve_name_id_format(user["name_id_format"])
    return resolve_name_id_format(opts["name_id_format"])


def authn_response_xml(username, sp, acs, in_response_to, requested_nid_format, idp_session):
    """Build the (signed / encrypted) Response for a logged-in user and
    record the SP session. -> XML text."""
    user = STATE.users[username]
    opts = STATE.options
    fmt = resolve_nid_format(user, requested_nid_format)
    if fmt == saml.NAMEID_FORMAT_TRANSIENT:
        value = "_" + secrets.token_hex(16)
    else:
        value = str(user.get("name_id") or username)
    name_id = saml.NameID(format=fmt, text=value)
    session_index = "_" + secrets.token_hex(16)
    # The option changes what is answered, not what the session holds.
    authn_class = opts["authn_context_class"] or idp_session["authn_class"]
    authn_instant = idp_session["created"] - opts["authn_instant_age"]
    statement = authn_statement(
        authn_class=authn_class,
        authn_instant=authn_instant,
        session_not_on_or_after=in_a_while(seconds=opts["session_lifetime"]) if opts["session_lifetime"] else None,
    )
    statement.session_index = session_index
    ava, meta = attribute_spec(user)
    ATTR_META.clear()
    ATTR_META.update(meta)
    sign_assertion, sign_response = sign_flags()
    encrypt = opts["encrypt_assertion"]
    if encrypt and not STATE.server.metadata.certs(sp, "any", "encryption"):
        raise ValueError(f"encrypt_assertion is on but SP {sp} has no certificate in its metadata")
    response = STATE.server._authn_response(
        in_response_to,
        acs,
        sp,
        identity=ava,
        name_id=name_id,
        policy=release_policy(),
        sign_assertion=sign_assertion,
        sign_response=sign_response,
        best_effort=True,
        encrypt_assertion=encrypt,
        encrypt_assertion_self_contained=True,
        authn_statement=statement,
        sign_alg=SIGN_ALGS[opts["signature_alg"]],
        digest_alg=DIGEST_ALGS[opts["digest_alg"]],
    )
    idp_session["sp_sessions"].append({
        "sp": sp,
        "name_id": value,
        "name_id_format": fmt,
        "session_index": session_index,
        "acs": acs,
    })
    STATE.event(
        "authn_response", user=username, sp=sp, acs=acs, in_response_to=in_response_to,
        name_id=value, name_id_format=fmt, session_index=session_index, sign=opts["sign"], encrypted=encrypt,
        authn_class=authn_class, authn_instant=authn_instant,
    )
    return str(response)


def error_response_xml(sp, acs, in_response_to, code, message):
    _sign_assertion, sign_response = sign_flags()
    response = STATE.server.create_error_response(
        in_response_to, acs, (code, message), sign=sign_response,
        sign_alg=SIGN_ALGS[STATE.options["signature_alg"]], digest_alg=DIGEST_ALGS[STATE.options["digest_alg"]],
    )
    STATE.event("error_response", sp=sp, acs=acs, in_response_to=in_response_to, status=code, message=message)
    return str(response)


def response_form(acs, xml_text, relay_state):
    fields = {"SAMLResponse": base64.b64encode(xml_text.encode("utf-8")).decode("ascii")}
    if relay_state is not None:
        fields["RelayState"] = relay_state
    return acs, fields


def new_idp_session(username, authn_class=None):
    """A fresh authentication of `username` with `authn_class` (default:
    the first class the user can do)."""
    sid = secrets.token_urlsafe(24)
    STATE.sessions[sid] = {
        "user": username,
        "created": int(time.time()),
        "authn_class": authn_class or user_classes(STATE.users[username])[0],
        "sp_sessions": [],
    }
    return sid


# --------------------------------------------------------------------------
# Authentication context (RequestedAuthnContext)

def requested_context(msg):
    """The AuthnContextClassRefs an AuthnRequest asks for (empty: none) and
    its Comparison. Every comparison is treated as `exact` (the peer knows
    no order of strength between classes): the answer is one of those asked."""
    context = msg.requested_authn_context
    if context is None:
        return [], None
    classes = [ref.text.strip() for ref in (context.authn_context_class_ref or []) if ref.text and ref.text.strip()]
    return classes, context.comparison or "exact"


def user_classes(user):
    """The classes a user "can do" (the `authn_classes` of the user)."""
    return list(user.get("authn_classes") or [DEFAULT_AUTHN_CLASS])


def class_for(user, requested):
    """The class a fresh login of `user` answers: the first asked-for class
    the user can do, or the user's first class when none was asked; None
    when the user can do none of those asked (a NoAuthnContext answer)."""
    can = user_classes(user)
    if not requested:
        return can[0]
    return next((cls for cls in requested if cls in can), None)


# --------------------------------------------------------------------------
# HTTP

COOKIE = "doorward_test_idp"


class HttpError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "doorward-saml-test-idp"

    def log_message(self, fmt, *args):
        sys.stderr.write("saml-peer: %s %s\n" % (self.address_string(), fmt % args))

    # ---- plumbing

    def send(self, status, body, content_type="text/plain; charset=utf-8", headers=()):
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_json(self, status, obj, headers=()):
        self.send(status, json.dumps(obj, indent=None) + "\n", "application/json; charset=utf-8", headers)

    def send_form(self, action, fields, headers=()):
        """An auto-submitting HTTP-POST binding form; JSON instead if the
        client asks for it with Accept: application/json."""
        if "application/json" in (self.headers.get("Accept") or ""):
            self.send_json(200, {"action": action, "method": "POST", "fields": fields}, headers)
        else:
            self.send(200, post_form_html(action, fields), "text/html; charset=utf-8", headers)

    def read_body(self, limit=1 << 20):
        length = int(self.headers.get("Content-Length") or 0)
        if length > limit:
            raise HttpError(413, "body too large")
        return self.rfile.read(length) if length else b""

    def form(self):
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        body = self.read_body().decode("utf-8")
        if ctype != "application/x-www-form-urlencoded":
            raise HttpError(400, "expected an application/x-www-form-urlencoded body")
        return {k: v[0] for k, v in urllib.parse.parse_qs(body, keep_blank_values=True).items()}

    def cookie_session(self):
        for part in (self.headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE and value in STATE.sessions:
                return value
        return None

    def dispatch(self):
        url = urllib.parse.urlsplit(self.path)
        self.raw_query = url.query
        self.query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        path = url.path
        try:
            route = ROUTES.get((self.command if self.command != "HEAD" else "GET", path))
            if route is None and path.startswith("/__test/users/"):
                route = Handler.test_user
            if route is None:
                known = any(p == path for (_m, p) in ROUTES) or path.startswith("/__test/users/")
                raise HttpError(405 if known else 404, "method not allowed" if known else "not found")
            if path.startswith("/__test/"):
                route(self, path)
            else:
                with STATE.lock:
                    route(self, path)
        except HttpError as err:
            log(f"{self.command} {path}: {err.status} {err.message}")
            if path.startswith("/__test/"):
                self.send_json(err.status, {"error": err.message})
            else:
                self.send(err.status, err.message + "\n")
        except Exception as err:  # noqa: BLE001 - report every failure to the test
            logging.exception("handler failed")
            msg = f"{type(err).__name__}: {err}"
            if path.startswith("/__test/"):
                self.send_json(500, {"error": msg})
            else:
                self.send(500, msg + "\n")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = dispatch

    # ---- public endpoints

    def metadata(self, _path):
        self.send(200, idp_metadata_xml(), "application/samlmetadata+xml")

    def sso(self, _path):
        if self.command == "GET":
            binding, params = BINDING_HTTP_REDIRECT, self.query
        else:
            binding, params = BINDING_HTTP_POST, self.form()
        if "SAMLRequest" not in params:
            raise HttpError(400, "missing SAMLRequest")
        relay_state = params.get("RelayState")
        try:
            req = STATE.server.parse_authn_request(params["SAMLRequest"], binding)
        except Exception as err:  # noqa: BLE001
            raise HttpError(400, f"AuthnRequest rejected by pysaml2: {type(err).__name__}: {err}")
        if req is None:
            raise HttpError(400, "AuthnRequest rejected by pysaml2")
        msg = req.message
        sp = msg.issuer.text.strip() if msg.issuer is not None and msg.issuer.text else None
        if not sp or sp not in STATE.sp_xml:
            raise HttpError(400, f"unknown SP (Issuer {sp!r}); give its metadata in SAML_SP_METADATA")
        # Request signature, per SP.
        if binding == BINDING_HTTP_REDIRECT:
            try:
                sig = verify_redirect_signature(self.raw_query, "SAMLRequest", sp_signing_certs(sp))
            except ValueError as err:
                raise HttpError(400, f"AuthnRequest signature: {err}")
        else:
            sig = "valid" if msg.signature is not None else "absent"  # pysaml2 verified it if present
        if sig == "absent" and sp_wants_signed_authn(sp):
            raise HttpError(400, f"AuthnRequest from {sp} must be signed (AuthnRequestsSigned)")
        try:
            args = STATE.server.response_args(msg, [BINDING_HTTP_POST])
        except Exception as err:  # noqa: BLE001
            raise HttpError(400, f"no usable AssertionConsumerService for this request: {err}")
        acs = args["destination"]
        nid_policy = msg.name_id_policy
        classes, comparison = requested_context(msg)
        pending = {
            "sp": sp,
            "acs": acs,
            "in_response_to": msg.id,
            "relay_state": relay_state,
            "name_id_format": nid_policy.format if nid_policy is not None else None,
            "requested_classes": classes,
            "created": time.time(),
        }
        STATE.event(
            "authn_request", sp=sp, id=msg.id, binding="redirect" if binding == BINDING_HTTP_REDIRECT else "post",
            signature=sig, acs=acs, force_authn=msg.force_authn, is_passive=msg.is_passive,
            name_id_format=pending["name_id_format"], relay_state=relay_state,
            requested_authn_context={"comparison": comparison, "classes": classes} if comparison else None,
        )
        sid = self.cookie_session()
        force = str(msg.force_authn).lower() == "true"
        # An SSO session answers only for a class it was made with; asking
        # for another one is a step-up: the user signs in again.
        if sid and not force and (not classes or STATE.sessions[sid]["authn_class"] in classes):
            xml_text = authn_response_xml(
                STATE.sessions[sid]["user"], sp, acs, msg.id, pending["name_id_format"], STATE.sessions[sid])
            return self.send_form(*response_form(acs, xml_text, relay_state))
        if str(msg.is_passive).lower() == "true":
            xml_text = error_response_xml(sp, acs, msg.id, samlp.STATUS_NO_PASSIVE, "no IdP session")
            return self.send_form(*response_form(acs, xml_text, relay_state))
        request_id = secrets.token_urlsafe(16)
        STATE.pending[request_id] = pending
        self.send(200, login_form_html(request_id, sp), "text/html; charset=utf-8")

    def login(self, _path):
        form = self.form()
        request_id = form.get("request_id", "")
        pending = STATE.pending.get(request_id)
        if pending is None or time.time() - pending["created"] > 600:
            raise HttpError(400, "unknown or expired request_id")
        sp, acs = pending["sp"], pending["acs"]
        if form.get("action", "login") == "cancel":
            del STATE.pending[request_id]
            xml_text = error_response_xml(sp, acs, pending["in_response_to"], samlp.STATUS_AUTHN_FAILED,
                                          "user cancelled")
            return self.send_form(*response_form(acs, xml_text, pending["relay_state"]))
        username = form.get("username", "")
        user = STATE.users.get(username)
        password = user.get("password") if user else None
        if user is None or (password is not None and form.get("password", "") != password):
            STATE.event("login_failed", user=username, sp=sp)
            return self.send(401, login_form_html(request_id, sp, "unknown user or wrong password"),
                             "text/html; charset=utf-8")
        del STATE.pending[request_id]
        authn_class = class_for(user, pending["requested_classes"])
        if authn_class is None:
            STATE.event("login_failed", user=username, sp=sp, reason="no requested authn context")
            xml_text = error_response_xml(sp, acs, pending["in_response_to"], samlp.STATUS_NO_AUTHN_CONTEXT,
                                          f"{username} cannot authenticate with the requested context")
            return self.send_form(*response_form(acs, xml_text, pending["relay_state"]))
        sid = new_idp_session(username, authn_class)
        STATE.event("login", user=username, sp=sp, idp_session=sid, authn_class=authn_class)
        xml_text = authn_response_xml(username, sp, acs, pending["in_response_to"], pending["name_id_format"],
                                      STATE.sessions[sid])
        cookie = f"{COOKIE}={sid}; Path=/; HttpOnly; SameSite=Lax"
        self.send_form(*response_form(acs, xml_text, pending["relay_state"]), headers=[("Set-Cookie", cookie)])

    def slo(self, _path):
        if self.command == "GET":
            binding, params = BINDING_HTTP_REDIRECT, self.query
        else:
            binding, params = BINDING_HTTP_POST, self.form()
        if "SAMLRequest" in params:
            return self.slo_request(binding, params)
        if "SAMLResponse" in params:
            return self.slo_response(binding, params)
        raise HttpError(400, "missing SAMLRequest or SAMLResponse")

    def slo_request(self, binding, params):
        """SP-initiated logout: end the IdP session, answer with a LogoutResponse."""
        relay_state = params.get("RelayState")
        try:
            req = STATE.server.parse_logout_request(params["SAMLRequest"], binding)
        except Exception as err:  # noqa: BLE001
            raise HttpError(400, f"LogoutRequest rejected by pysaml2: {type(err).__name__}: {err}")
        if req is None:
            raise HttpError(400, "LogoutRequest rejected by pysaml2")
        msg = req.message
        sp = msg.issuer.text.strip() if msg.issuer is not None and msg.issuer.text else None
        if not sp or sp not in STATE.sp_xml:
            raise HttpError(400, f"unknown SP (Issuer {sp!r})")
        if binding == BINDING_HTTP_REDIRECT:
            try:
                sig = verify_redirect_signature(self.raw_query, "SAMLRequest", sp_signing_certs(sp))
            except ValueError as err:
                raise HttpError(400, f"LogoutRequest signature: {err}")
        else:
            sig = "valid" if msg.signature is not None else "absent"
        if sig == "absent" and sp_wants_signed_logout(sp):
            raise HttpError(400, f"LogoutRequest from {sp} must be signed")
        name_id = msg.name_id.text.strip() if msg.name_id is not None and msg.name_id.text else None
        indexes = {si.text.strip() for si in (msg.session_index or []) if si.text}
        ended, users = [], set()
        for sid, sess in list(STATE.sessions.items()):
            for sps in sess["sp_sessions"]:
                if sps["sp"] == sp and sps["name_id"] == name_id and (not indexes or sps["session_index"] in indexes):
                    ended.append(sid)
                    users.add(sess["user"])
                    break
        not_notified = set()
        for sid in ended:
            for sps in STATE.sessions[sid]["sp_sessions"]:
                if sps["sp"] != sp:
                    not_notified.add(sps["sp"])
            del STATE.sessions[sid]
        STATE.event(
            "logout_request", sp=sp, id=msg.id, binding="redirect" if binding == BINDING_HTTP_REDIRECT else "post",
            signature=sig, name_id=name_id, session_indexes=sorted(indexes), sessions_ended=len(ended),
            users=sorted(users), other_sps_not_notified=sorted(not_notified), relay_state=relay_state,
        )
        endpoints = sp_slo_endpoints(sp)
        out_binding = binding if binding in endpoints else next(
            (b for b in (BINDING_HTTP_REDIRECT, BINDING_HTTP_POST) if b in endpoints), None)
        if out_binding is None:
            raise HttpError(400, f"SP {sp} has no HTTP-Redirect or HTTP-POST SingleLogoutService")
        destination = endpoints[out_binding][1]
        clear_cookie = (f"{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0",)
        status = None if ended else saml2.samlp.Status(
            status_code=samlp.StatusCode(value=samlp.STATUS_SUCCESS),
            status_message=samlp.StatusMessage(text="no matching session"))
        self.send_logout_message(out_binding, destination, relay_state, response_to=msg, status=status,
                                 headers=[("Set-Cookie", clear_cookie[0])])
        STATE.event("logout_response_sent", sp=sp, in_response_to=msg.id, destination=destination,
                    binding="redirect" if out_binding == BINDING_HTTP_REDIRECT else "post")

    def send_logout_message(self, binding, destination, relay_state, response_to=None, status=None, headers=()):
        info = logout_message(binding, destination, relay_state, response_to=response_to, status=status)
        if info["binding"] == "redirect":
            self.send(303, "", headers=[("Location", info["url"]), *headers])
        else:
            self.send_form(info["url"], info["fields"], headers)

    def slo_response(self, binding, params):
        """The SP's LogoutResponse to a LogoutRequest this IdP sent."""
        try:
            resp = STATE.server.parse_logout_request_response(params["SAMLResponse"], binding)
        except Exception as err:  # noqa: BLE001
            STATE.event("logout_response", ok=False, error=f"{type(err).__name__}: {err}")
            raise HttpError(400, f"LogoutResponse rejected by pysaml2: {type(err).__name__}: {err}")
        if resp is None:
            STATE.event("logout_response", ok=False, error="rejected by pysaml2")
            raise HttpError(400, "LogoutResponse rejected by pysaml2")
        msg = resp.response
        sp = msg.issuer.text.strip() if msg.issuer is not None and msg.issuer.text else None
        sig_error = None
        if binding == BINDING_HTTP_REDIRECT:
            try:
                sig = verify_redirect_signature(self.raw_query, "SAMLResponse", sp_signing_certs(sp) if sp in STATE.sp_xml else [])
            except ValueError as err:
                sig, sig_error = "invalid", str(err)
        else:
            sig = "valid" if msg.signature is not None else "absent"
        pending = STATE.outgoing_logout.pop(msg.in_response_to, None)
        status = msg.status.status_code.value if msg.status is not None else None
        ok = pending is not None and sig != "invalid" and pending["sp"] == sp
        STATE.event(
            "logout_response", ok=ok, sp=sp, in_response_to=msg.in_response_to, known_request=pending is not None,
            status=status, signature=sig, signature_error=sig_error,
            binding="redirect" if binding == BINDING_HTTP_REDIRECT else "post", relay_state=params.get("RelayState"),
        )
        if not ok:
            raise HttpError(400, "LogoutResponse not accepted: " + (sig_error or "unknown InResponseTo or issuer"))
        self.send(200, f"logout complete: {status}\n")

    # ---- test endpoints (see README.md)

    def test_health(self, _path):
        self.send_json(200, {"status": "ok"})

    def test_user(self, path):
        name = urllib.parse.unquote(path[len("/__test/users/"):])
        with STATE.lock:
            if self.command == "GET":
                if name not in STATE.users:
                    raise HttpError(404, "unknown user")
                return self.send_json(200, STATE.users[name])
            if self.command in ("POST", "PUT"):
                try:
                    body = json.loads(self.read_body() or b"null")
                except ValueError as err:
                    raise HttpError(400, f"invalid JSON: {err}")
                check_user(name, body)
                created = name not in STATE.users
                STATE.users[name] = body
                log(f"user {name!r} {'created' if created else 'replaced'}")
                return self.send_json(200, body)
            if self.command == "DELETE":
                if STATE.users.pop(name, None) is None:
                    raise HttpError(404, "unknown user")
                return self.send_json(200, {"deleted": name})
        raise HttpError(405, "method not allowed")

    def test_options(self, _path):
        with STATE.lock:
            if self.command == "POST":
                try:
                    patch = json.loads(self.read_body() or b"{}")
                    if not isinstance(patch, dict):
                        raise ValueError("body must be a JSON object")
                    unknown = set(patch) - set(OPTION_DEFAULTS)
                    if unknown:
                        raise ValueError(f"unknown options {sorted(unknown)}")
                    STATE.options = check_options({**STATE.options, **patch})
                except (ValueError, TypeError) as err:
                    raise HttpError(400, str(err))
                log(f"options now {json.dumps(STATE.options)}")
            self.send_json(200, STATE.options)

    def test_sps(self, _path):
        with STATE.lock:
            if self.command == "POST":
                try:
                    added = add_sps(sp_metadata_from_text(self.read_body().decode("utf-8")))
                except Exception as err:  # noqa: BLE001
                    raise HttpError(400, f"bad SP metadata: {type(err).__name__}: {err}")
                return self.send_json(200, {"added": added, "sps": sorted(STATE.sp_xml)})
            if self.command == "DELETE":
                entity = self.query.get("entity_id")
                if STATE.sp_xml.pop(entity, None) is None:
                    raise HttpError(404, "unknown SP")
                build_server()
            self.send_json(200, {"sps": sorted(STATE.sp_xml)})

    def test_sessions(self, _path):
        with STATE.lock:
            self.send_json(200, {"sessions": [{"id": sid, **s} for sid, s in STATE.sessions.items()]})

    def test_events(self, _path):
        with STATE.lock:
            if self.command == "DELETE":
                STATE.events.clear()
            since = int(self.query.get("since", "0") or 0)
            self.send_json(200, {"events": [e for e in STATE.events if e["seq"] > since]})

    def test_rotate(self, _path):
        with STATE.lock:
            keep = bool_value("keep_old", self.query.get("keep_old", "1"))
            key = new_key_files(f"rotated-{len(STATE.keys)}")
            STATE.keys = [key] + (STATE.keys if keep else [])
            build_server()
            log(f"signing key rotated, {len(STATE.keys)} cert(s) published")
            self.send_json(200, {"signing_cert": key["cert_pem"].decode(), "published": len(STATE.keys)})

    def test_unsolicited(self, _path):
        """IdP-initiated login: a Response without InResponseTo."""
        params = self.query if self.command == "GET" else {**self.query, **self.form()}
        with STATE.lock:
            username = params.get("user", "")
            if username not in STATE.users:
                raise HttpError(404, f"unknown user {username!r}")
            sp = params.get("sp") or (next(iter(STATE.sp_xml)) if len(STATE.sp_xml) == 1 else None)
            if sp not in STATE.sp_xml:
                raise HttpError(400, "unknown or missing sp (entity id)")
            acs = params.get("acs") or sp_default_acs(sp)
            sid = self.cookie_session() or new_idp_session(username)
            if STATE.sessions[sid]["user"] != username:
                sid = new_idp_session(username)
            STATE.event("login", user=username, sp=sp, idp_session=sid, unsolicited=True)
            xml_text = authn_response_xml(username, sp, acs, None, None, STATE.sessions[sid])
            cookie = f"{COOKIE}={sid}; Path=/; HttpOnly; SameSite=Lax"
            self.send_form(*response_form(acs, xml_text, params.get("relay_state")), headers=[("Set-Cookie", cookie)])

    def test_logout(self, _path):
        """IdP-initiated logout of a user's sessions."""
        params = self.query if self.command == "GET" else {**self.query, **(self.form() if self.headers.get("Content-Length") not in (None, "0") else {})}
        username = params.get("user", "")
        only_sp = params.get("sp")
        wanted = params.get("binding")
        if wanted and wanted not in BINDING_NAMES:
            raise HttpError(400, "binding must be redirect, post or soap")
        soap_calls, out = [], []
        with STATE.lock:
            targets = []
            for sid, sess in list(STATE.sessions.items()):
                if sess["user"] != username:
                    continue
                for sps in sess["sp_sessions"]:
                    if not only_sp or sps["sp"] == only_sp:
                        targets.append(sps)
                del STATE.sessions[sid]
            if not targets:
                raise HttpError(404, f"no session for user {username!r}" + (f" at {only_sp}" if only_sp else ""))
            for sps in targets:
                endpoints = sp_slo_endpoints(sps["sp"])
                order = ([BINDING_NAMES[wanted]] if wanted else []) + [BINDING_HTTP_REDIRECT, BINDING_HTTP_POST, BINDING_SOAP]
                binding = next((b for b in order if b in endpoints), None)
                if binding is None:
                    out.append({"sp": sps["sp"], "error": "SP has no SingleLogoutService"})
                    continue
                if wanted and binding != BINDING_NAMES[wanted]:
                    out.append({"sp": sps["sp"], "error": f"SP has no {wanted} SingleLogoutService"})
                    continue
                info = logout_message(binding, endpoints[binding][0], params.get("relay_state"), sp_session=sps,
                                      user=username)
                if binding == BINDING_SOAP:
                    soap_calls.append((info, sps))
                else:
                    out.append(info)
        for info, sps in soap_calls:  # outside the lock: the SP may call us back
            out.append(soap_logout(info, sps))
        self.send_json(200, {"user": username, "requests": out})


def logout_message(binding, destination, relay_state, response_to=None, status=None, sp_session=None, user=None):
    """A LogoutResponse (response_to = the request) or an IdP-initiated
    LogoutRequest (sp_session = the SP session to end), encoded for the
    binding. -> dict describing what the client must do."""
    server = STATE.server
    opts = STATE.options
    sign_alg, digest_alg = SIGN_ALGS[opts["signature_alg"]], DIGEST_ALGS[opts["digest_alg"]]
    xml_sign = opts["sign_logout"] and binding != BINDING_HTTP_REDIRECT  # enveloped signature (POST, SOAP)
    query_sign = opts["sign_logout"] and binding == BINDING_HTTP_REDIRECT  # SigAlg + Signature query params
    if response_to is not None:
        response = server.create_logout_response(response_to, [binding], status=status, sign=False)
        response.destination = destination
        xml_text = server.sign(response, sign_alg=sign_alg, digest_alg=digest_alg) if xml_sign else str(response)
        is_response, msg_id = True, response.id
    else:
        _id, request = server.create_logout_request(
            destination, sp_session["sp"],
            name_id=saml.NameID(format=sp_session["name_id_format"], text=sp_session["name_id"]),
            reason="urn:oasis:names:tc:SAML:2.0:logout:admin",
            expire=in_a_while(minutes=5),
            session_indexes=[sp_session["session_index"]],
            sign=xml_sign, sign_alg=sign_alg, digest_alg=digest_alg,
        )
        xml_text = str(request)
        is_response, msg_id = False, _id
        STATE.outgoing_logout[_id] = {"sp": sp_session["sp"], "user": user}
        STATE.event("logout_request_sent", sp=sp_session["sp"], id=_id, user=user, name_id=sp_session["name_id"],
                    session_index=sp_session["session_index"], binding={v: k for k, v in BINDING_NAMES.items()}[binding],
                    destination=destination)
    info = server.apply_binding(binding, xml_text, destination, relay_state or "", response=is_response,
                                sign=query_sign, sigalg=sign_alg)
    typ = "SAMLResponse" if is_response else "SAMLRequest"
    if binding == BINDING_HTTP_REDIRECT:
        url = dict(info["headers"])["Location"]
        return {"sp": sp_session["sp"] if sp_session else None, "id": msg_id, "binding": "redirect",
                "method": "GET", "url": url}
    if binding == BINDING_HTTP_POST:
        fields = {typ: base64.b64encode(xml_text.encode("utf-8")).decode("ascii")}
        if relay_state:
            fields["RelayState"] = relay_state
        return {"sp": sp_session["sp"] if sp_session else None, "id": msg_id, "binding": "post", "method": "POST",
                "url": destination, "fields": fields, "html": post_form_html(destination, fields)}
    return {"sp": sp_session["sp"], "id": msg_id, "binding": "soap", "url": destination, "info": info}


def soap_logout(info, sps):
    """Back-channel: POST the SOAP-wrapped LogoutRequest to the SP, parse its answer."""
    raw = info.pop("info")
    headers = dict(raw.get("headers") or [])
    result = {k: v for k, v in info.items()}
    try:
        http = requests.post(info["url"], data=raw["data"], headers=headers, timeout=5)
        result["http_status"] = http.status_code
        with STATE.lock:
            resp = STATE.server.parse_logout_request_response(http.text, BINDING_SOAP)
            msg = resp.response if resp else None
            status = msg.status.status_code.value if msg is not None and msg.status is not None else None
            pending = STATE.outgoing_logout.pop(info["id"], None)
            result.update(status=status, in_response_to=msg.in_response_to if msg is not None else None)
            STATE.event("logout_response", ok=bool(msg is not None and pending), sp=sps["sp"], binding="soap",
                        in_response_to=result["in_response_to"], status=status,
                        signature="valid" if msg is not None and msg.signature is not None else "absent")
    except Exception as err:  # noqa: BLE001
        result["error"] = f"{type(err).__name__}: {err}"
        with STATE.lock:
            STATE.event("logout_response", ok=False, sp=sps["sp"], binding="soap", error=result["error"])
    return result


ROUTES = {
    ("GET", "/metadata"): Handler.metadata,
    ("GET", "/sso"): Handler.sso,
    ("POST", "/sso"): Handler.sso,
    ("POST", "/login"): Handler.login,
    ("GET", "/slo"): Handler.slo,
    ("POST", "/slo"): Handler.slo,
    ("GET", "/__test/health"): Handler.test_health,
    ("GET", "/__test/options"): Handler.test_options,
    ("POST", "/__test/options"): Handler.test_options,
    ("GET", "/__test/sps"): Handler.test_sps,
    ("POST", "/__test/sps"): Handler.test_sps,
    ("DELETE", "/__test/sps"): Handler.test_sps,
    ("GET", "/__test/sessions"): Handler.test_sessions,
    ("GET", "/__test/events"): Handler.test_events,
    ("DELETE", "/__test/events"): Handler.test_events,
    ("POST", "/__test/keys/rotate"): Handler.test_rotate,
    ("GET", "/__test/unsolicited"): Handler.test_unsolicited,
    ("POST", "/__test/unsolicited"): Handler.test_unsolicited,
    ("POST", "/__test/logout"): Handler.test_logout,
}


# --------------------------------------------------------------------------
# Start-up

def check_user(name, user):
    if not isinstance(user, dict):
        raise HttpError(400, f"user {name!r} must be a JSON object")
    attrs = user.get("attributes", {})
    if not isinstance(attrs, dict):
        raise HttpError(400, f"user {name!r}: attributes must be an object")
    for key in ("password", "name_id", "name_id_format"):
        if key in user and user[key] is not None and not isinstance(user[key], str):
            raise HttpError(400, f"user {name!r}: {key} must be a string")
    classes = user.get("authn_classes")
    if classes is not None and (
        not isinstance(classes, list) or not classes or not all(isinstance(c, str) and c.strip() for c in classes)
    ):
        raise HttpError(400, f"user {name!r}: authn_classes must be a non-empty list of class URIs")
    if user.get("name_id_format"):
        try:
            resolve_name_id_format(user["name_id_format"])
        except ValueError as err:
            raise HttpError(400, f"user {name!r}: {err}")


def add_sps(xml_list):
    added = []
    for xml_text in xml_list:
        entity = entity_id_of(xml_text)
        if not entity:
            raise ValueError("SP metadata without entityID")
        STATE.sp_xml[entity] = xml_text
        added.append(entity)
    build_server()
    for entity in added:
        if entity not in STATE.server.metadata.keys():
            raise ValueError(f"pysaml2 did not load the metadata of {entity}")
    return added


def new_key_files(label):
    key_pem, cert_pem = make_key_and_cert(f"doorward test IdP {label}")
    key_path = os.path.join(STATE.tmpdir, f"{label}.key")
    cert_path = os.path.join(STATE.tmpdir, f"{label}.crt")
    with open(key_path, "wb") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(key_pem)
    with open(cert_path, "wb") as fh:
        fh.write(cert_pem)
    return {"key": key_path, "cert": cert_path, "cert_pem": cert_pem}


def watch_stdin():
    """Exit when stdin reaches EOF (the test that started us is gone)."""
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    log("stdin closed, exiting")
    shutdown_now(0)


def shutdown_now(code):
    if STATE.tmpdir:
        shutil.rmtree(STATE.tmpdir, ignore_errors=True)
    sys.stderr.flush()
    os._exit(code)


XMLSEC1 = None


def main():
    global XMLSEC1
    t0 = time.monotonic()
    XMLSEC1 = env("SAML_XMLSEC1", shutil.which("xmlsec1") or "")
    if not XMLSEC1 or not os.access(XMLSEC1, os.X_OK):
        fail("the xmlsec1 command is required (Debian: apt-get install xmlsec1), or set SAML_XMLSEC1")
    port = env_int("SAML_PORT", 0, 0, 65535)
    STATE.options = options_from_env()

    users = env_json("SAML_USERS", {})
    if not isinstance(users, dict):
        fail("SAML_USERS must be a JSON object: login name -> user")
    for name, user in users.items():
        try:
            check_user(name, user)
        except HttpError as err:
            fail(f"SAML_USERS: {err.message}")
    STATE.users = users

    try:
        httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    except OSError as err:
        fail(f"cannot listen on 127.0.0.1:{port}: {err}")
    httpd.daemon_threads = True
    STATE.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    STATE.entity_id = env("SAML_ENTITY_ID", f"{STATE.base}/metadata")
    STATE.tmpdir = tempfile.mkdtemp(prefix="doorward-saml-idp-")

    signal.signal(signal.SIGTERM, lambda *_: (log("SIGTERM, exiting"), shutdown_now(0)))
    signal.signal(signal.SIGINT, lambda *_: (log("SIGINT, exiting"), shutdown_now(0)))

    key_file, cert_file = env("SAML_KEY_FILE", None), env("SAML_CERT_FILE", None)
    if bool(key_file) != bool(cert_file):
        fail("set both SAML_KEY_FILE and SAML_CERT_FILE, or neither")
    if key_file:
        with open(cert_file, "rb") as fh:
            STATE.keys = [{"key": key_file, "cert": cert_file, "cert_pem": fh.read()}]
    else:
        STATE.keys = [new_key_files("signing")]

    sp_text = env("SAML_SP_METADATA", None)
    try:
        if sp_text:
            add_sps(sp_metadata_from_text(sp_text))
        else:
            build_server()
    except Exception as err:  # noqa: BLE001
        shutil.rmtree(STATE.tmpdir, ignore_errors=True)
        logging.exception("start-up failed")
        fail(f"SAML_SP_METADATA: {type(err).__name__}: {err}")

    watch = env("SAML_EXIT_ON_STDIN_EOF", "auto").lower()
    try:
        mode = os.fstat(0).st_mode
        stdin_is_pipe = stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)
    except OSError:
        stdin_is_pipe = False
    if watch in ("1", "true", "yes") or (watch == "auto" and stdin_is_pipe):
        threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()

    line = {
        "base": STATE.base,
        "entity_id": STATE.entity_id,
        "metadata_url": f"{STATE.base}/metadata",
        "sso_url": f"{STATE.base}/sso",
        "slo_url": f"{STATE.base}/slo",
        "signing_cert": STATE.keys[0]["cert_pem"].decode("ascii"),
    }
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()
    log(f"listening on {STATE.base}, {len(STATE.sp_xml)} SP(s), {len(STATE.users)} user(s), "
        f"options {json.dumps(STATE.options)}, started in {time.monotonic() - t0:.2f}s")
    try:
        httpd.serve_forever(poll_interval=0.5)
    finally:
        shutdown_now(0)


if __name__ == "__main__":
    main()
