#!/usr/bin/env python3
"""Self-test of the SSF test transmitter, without doorward.

Starts transmitter.py and a small RFC 8935 receiver of its own that checks
each SET the way a real receiver would (PyJWT against the transmitter's
/jwks.json, refetched on an unknown kid) and answers 202 or 400 with an `err`
code. Then walks through stream management, push, key rotation, every attack
override, verification, status changes, poll delivery (acks, setErrs,
redelivery, long polling) and the bench. Exits non-zero on the first failure.

    target/pyenv/bin/python tests/peers/ssf/selftest.py
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives import serialization

HERE = os.path.dirname(os.path.abspath(__file__))
CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
RISC = "https://schemas.openid.net/secevent/risc/event-type/"
SSF = "https://schemas.openid.net/secevent/ssf/event-type/"
PUSH, POLL = "urn:ietf:rfc:8935", "urn:ietf:rfc:8936"
TOKEN = "management-token-for-the-selftest"
PUSH_AUTH = "Bearer push-credential-for-the-selftest"
ALICE = {"format": "email", "email": "alice@example.com"}


def call(method, url, body=None, token=None, raw=None):
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    conn.request(method, parts.path + ("?" + parts.query if parts.query else ""), body=data, headers=headers)
    response = conn.getresponse()
    text = response.read()
    conn.close()
    return response.status, (json.loads(text) if text else None)


def check(condition, what):
    if not condition:
        raise AssertionError(what)
    print(f"ok   {what}")


def eventually(predicate, seconds=5):
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


class Receiver:
    """A push receiver (RFC 8935) that validates like doorward should."""

    def __init__(self, issuer, jwks_uri):
        self.issuer, self.jwks_uri, self.audience = issuer, jwks_uri, None
        self.keys, self.received, self.lock = {}, [], threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer, claims = receiver.judge(self.headers, body)
                with receiver.lock:
                    receiver.received.append({"headers": dict(self.headers), "body": body, "claims": claims,
                                              "status": status, "err": (answer or {}).get("err")})
                data = json.dumps(answer).encode() if answer else b""
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                if data:
                    self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/ssf/push"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def key(self, kid):
        if kid not in self.keys:  # an unknown kid: refetch once (the key may have rotated)
            _, jwks = call("GET", self.jwks_uri)
            self.keys = {k["kid"]: jwt.PyJWK(k) for k in jwks["keys"]}
        return self.keys.get(kid)

    def judge(self, headers, body):
        def refuse(err):
            return 400, {"err": err, "description": err}, None
        if headers.get("Authorization") != PUSH_AUTH:
            return refuse("authentication_failed")
        if headers.get("Content-Type") != "application/secevent+jwt":
            return refuse("invalid_request")
        try:
            header = jwt.get_unverified_header(body)
        except jwt.PyJWTError:
            return refuse("invalid_request")
        if header.get("typ") != "secevent+jwt" or header.get("alg") not in ("RS256", "ES256"):
            return refuse("invalid_request")
        key = self.key(header.get("kid"))
        if key is None:
            return refuse("invalid_key")
        try:
            claims = jwt.decode(body, key.key, algorithms=[header["alg"]], options={"verify_aud": False})
        except jwt.PyJWTError:
            return refuse("invalid_key")
        if claims.get("iss") != self.issuer:
            return refuse("invalid_issuer")
        aud = claims.get("aud")
        if self.audience not in (aud if isinstance(aud, list) else [aud]):
            return refuse("invalid_audience")
        return 202, None, claims

    def last(self):
        with self.lock:
            return self.received[-1]

    def wait_for(self, predicate, seconds=5, since=0):
        """The first SET received (from index `since` on) that `predicate` likes."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self.lock:
                for item in self.received[since:]:
                    if predicate(item):
                        return item
            time.sleep(0.02)
        return None


def start():
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "transmitter.py"), "--token", TOKEN, "--long-poll-seconds", "2"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    info = json.loads(proc.stdout.readline())
    return proc, info


def main():
    t0 = time.monotonic()
    proc, info = start()
    base = info["base"]
    try:
        run(base, info)
    finally:
        proc.stdin.close()
        try:
            code = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = None
    check(code == 0, "the transmitter exits (status 0) when its stdin closes")
    print(f"all passed in {time.monotonic() - t0:.1f}s")


def run(base, info):
    status, meta = call("GET", f"{base}/.well-known/ssf-configuration")
    check(status == 200 and meta["spec_version"] == "1_0" and meta["issuer"] == base, "metadata: spec_version, issuer")
    check(meta["delivery_methods_supported"] == [PUSH, POLL] and meta["default_subjects"] == "NONE"
          and meta["authorization_schemes"] == [{"spec_urn": "urn:ietf:rfc:6750"}], "metadata: delivery, auth, subjects")
    receiver = Receiver(base, meta["jwks_uri"])
    conf = meta["configuration_endpoint"]

    check(call("POST", conf, {"delivery": {"method": PUSH, "endpoint_url": receiver.url}})[0] == 401,
          "stream create without the bearer token is 401")
    check(call("GET", conf, token="wrong")[0] == 401, "stream read with a wrong token is 401")
    requested = [CAEP + "session-revoked", RISC + "account-disabled", "urn:example:not-supported"]
    status, stream = call("POST", conf, {"delivery": {"method": PUSH, "endpoint_url": receiver.url,
                                                      "authorization_header": PUSH_AUTH},
                                         "events_requested": requested, "description": "selftest"}, TOKEN)
    sid = stream["stream_id"]
    receiver.audience = stream["aud"]
    check(status == 201 and stream["iss"] == base and stream["aud"] == receiver.url.rsplit("/ssf/", 1)[0],
          "push stream created; aud = the push endpoint's origin")
    check(stream["events_delivered"] == requested[:2], "events_delivered = requested ∩ supported")
    check(call("GET", f"{conf}?stream_id={sid}", token=TOKEN)[1]["stream_id"] == sid, "GET one stream")
    check([s["stream_id"] for s in call("GET", conf, token=TOKEN)[1]] == [sid], "GET all streams")
    status, patched = call("PATCH", conf, {"stream_id": sid, "description": "patched"}, TOKEN)
    check(status == 200 and patched["description"] == "patched" and patched["events_requested"] == requested,
          "PATCH changes only what it names")
    check(call("PATCH", conf, {"stream_id": "nope"}, TOKEN)[0] == 404, "PATCH of an unknown stream is 404")
    check(call("PATCH", conf, dict(patched, description="again"), TOKEN)[0] == 200
          and call("PATCH", conf, {"stream_id": sid, "aud": "https://else.example"}, TOKEN)[0] == 400,
          "PATCH may echo transmitter-supplied members, but they must match")
    status, replaced = call("PUT", conf, {"stream_id": sid, "delivery": patched["delivery"]}, TOKEN)
    check(status == 200 and replaced["events_requested"] == [] and "description" not in replaced,
          "PUT replaces every receiver-supplied member")
    call("PATCH", conf, {"stream_id": sid, "events_requested": requested}, TOKEN)
    check(call("GET", f"{meta['status_endpoint']}?stream_id={sid}", token=TOKEN)[1]["status"] == "enabled",
          "status starts enabled")

    emit = lambda **kw: call("POST", f"{base}/_test/emit", dict({"event": CAEP + "session-revoked",  # noqa: E731
                                                                 "sub_id": ALICE}, **kw))[1]
    out = emit(payload={"event_timestamp": 1700000000})
    got = receiver.last()
    check(out["status"] == 202 and got["status"] == 202 and got["claims"]["jti"] == out["jti"],
          "push: the receiver accepted a SET that verifies against /jwks.json")
    check(got["headers"]["Content-Type"] == "application/secevent+jwt" and got["headers"]["Accept"] ==
          "application/json" and got["headers"]["Authorization"] == PUSH_AUTH, "push headers per RFC 8935")
    claims = got["claims"]
    check(claims["sub_id"] == ALICE and claims["events"] == {CAEP + "session-revoked": {"event_timestamp": 1700000000}}
          and abs(claims["iat"] - time.time()) < 5, "SET claims: sub_id, events, iat")
    check(jwt.get_unverified_header(out["token"])["kid"] == info["kids"]["RS256"], "RS256 under the current kid")
    check(emit(alg="ES256")["status"] == 202, "ES256 SET accepted")

    old_kid = info["kids"]["RS256"]
    status, rotated = call("POST", f"{base}/_test/rotate", {})
    jwks = call("GET", meta["jwks_uri"])[1]["keys"]
    check(rotated["kid"] != old_kid and {old_kid, rotated["kid"]} <= {k["kid"] for k in jwks},
          "rotate: new kid published, old kept")
    out = emit()
    check(out["status"] == 202 and jwt.get_unverified_header(out["token"])["kid"] == rotated["kid"],
          "after rotation the new key signs (receiver refetched on the unknown kid)")
    call("POST", f"{base}/_test/rotate", {"retire_old": True})
    check(old_kid not in {k["kid"] for k in call("GET", meta["jwks_uri"])[1]["keys"]}, "retire_old drops old keys")

    overrides(base, emit, receiver, sid)
    status_and_verification(meta, emit, receiver, sid)
    poll(base, meta, emit)

    status, result = call("POST", f"{base}/_test/bench", {"stream_id": sid, "count": 200, "concurrency": 4,
                                                           "subjects": ["a@example.com", ALICE],
                                                           "event": CAEP + "credential-change"})
    check(status == 200 and result["sent"] == 200 and result["accepted"] == 200 and result["seconds"] > 0,
          f"bench: 200 pushed, 200 accepted ({result.get('per_second')}/s)")
    jtis = {r["claims"]["jti"] for r in receiver.received[-200:] if r["claims"]}
    check(len(jtis) == 200, "bench SETs are distinct")

    state = call("GET", f"{base}/_test/state")[1]
    check(any(m["authorized"] is False for m in state["management"]) and state["deliveries"],
          "state records management calls and deliveries")
    check(call("DELETE", f"{conf}?stream_id={sid}", token=TOKEN)[0] == 204
          and call("GET", f"{conf}?stream_id={sid}", token=TOKEN)[0] == 404, "DELETE removes the stream")


def overrides(base, emit, receiver, sid):
    for name, value, err in (("iss", "https://evil.example", "invalid_issuer"),
                             ("aud", "https://other.example", "invalid_audience"),
                             ("typ", "JWT", "invalid_request"), ("typ", None, "invalid_request"),
                             ("alg", "none", "invalid_request"), ("alg", "HS256", "invalid_request"),
                             ("sign_with", "unknown", "invalid_key"), ("sign_with", "wrong", "invalid_key"),
                             ("authorization", "Bearer wrong", "authentication_failed"),
                             ("authorization", None, "authentication_failed"),
                             ("content_type", "application/json", "invalid_request")):
        out = emit(**{name: value})
        check(out["status"] == 400 and out["body"]["err"] == err, f"override {name}={value!r}: receiver says {err}")
    header = jwt.get_unverified_header(emit(typ=None, deliver=False)["token"])
    check("typ" not in header, "typ=null leaves typ out")
    check("Authorization" not in receiver.wait_for(lambda r: r["err"] == "authentication_failed"
                                                   and "Authorization" not in r["headers"])["headers"],
          "authorization=null sends no Authorization header")
    token = emit(alg="HS256", deliver=False)["token"]
    signing_input, _, signature = token.rpartition(".")
    jwks = call("GET", f"{base}/jwks.json")[1]["keys"]
    kid = jwt.get_unverified_header(token)["kid"]
    pem = jwt.PyJWK(next(k for k in jwks if k["kid"] == kid)).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    mac = base64.urlsafe_b64encode(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()).rstrip(b"=")
    check(mac.decode() == signature, "HS256 is keyed with the published RSA key's PEM (algorithm confusion)")
    check(emit(alg="none", deliver=False)["token"].endswith("."), "alg=none has an empty signature")
    unknown = jwt.get_unverified_header(emit(sign_with="unknown", deliver=False)["token"])["kid"]
    check(unknown not in {k["kid"] for k in jwks}, "sign_with=unknown uses a kid not in the JWKS")
    wrong = jwt.get_unverified_header(emit(sign_with="wrong", deliver=False)["token"])["kid"]
    check(wrong in {k["kid"] for k in jwks}, "sign_with=wrong signs under a published kid")
    out = emit(raw_body="not a jwt")
    check(out["status"] == 400 and receiver.last()["body"] == b"not a jwt", "raw_body is sent as is")
    out = emit(iat=int(time.time()) - 90000, jti="fixed-jti", extra_claims={"txn": "t-1"},
               events={CAEP + "session-revoked": {}, RISC + "account-disabled": {}})
    claims = receiver.last()["claims"]
    check(out["jti"] == "fixed-jti" and claims["jti"] == "fixed-jti" and claims["txn"] == "t-1"
          and claims["iat"] < time.time() - 86400 and len(claims["events"]) == 2,
          "iat, jti, extra_claims and events overrides land in the SET")
    check(emit(jti="fixed-jti")["jti"] == "fixed-jti", "a jti can be reused (replay)")
    other = Receiver(receiver.issuer, receiver.jwks_uri)
    other.audience = receiver.audience
    out = emit(raw_body=out["token"], endpoint_url=other.url)
    check(out["status"] == 202 and other.last()["claims"]["jti"] == "fixed-jti",
          "endpoint_url and raw_body send an earlier token to another receiver")
    before = len(receiver.received)
    out = emit(deliver=False)
    check(set(out) == {"jti", "token"} and len(receiver.received) == before, "deliver=false only returns the token")


def status_and_verification(meta, emit, receiver, sid):
    status_url = meta["status_endpoint"]
    check(call("POST", meta["verification_endpoint"], {"stream_id": sid, "state": "s-123"}, TOKEN)[0] == 204,
          "verification request answered 204")
    got = receiver.wait_for(lambda r: r["claims"] and SSF + "verification" in r["claims"]["events"])
    check(got and got["claims"]["events"][SSF + "verification"] == {"state": "s-123"}
          and got["claims"]["sub_id"] == {"format": "opaque", "id": sid}, "verification SET pushed with its state")
    # The record is written once the push returns, a moment after the receiver saw it.
    check(eventually(lambda: any(v["state"] == "s-123" and v["answered"] == 202 for v in
                                 call("GET", f"{meta['issuer']}/_test/state")[1]["verifications"])),
          "state shows the verification answered")

    def updated(status, since):
        return receiver.wait_for(lambda r: r["claims"] and r["claims"]["events"].get(
            SSF + "stream-updated", {}).get("status") == status, since=since)

    mark = len(receiver.received)
    status, body = call("POST", status_url, {"stream_id": sid, "status": "paused", "reason": "test"}, TOKEN)
    check(status == 200 and body == {"stream_id": sid, "status": "paused", "reason": "test"}, "status set to paused")
    check(updated("paused", mark) is not None, "stream-updated (paused) pushed")
    held = emit()
    check(held["status"] == "held", "a paused stream holds events")
    mark = len(receiver.received)
    call("POST", status_url, {"stream_id": sid, "status": "enabled"}, TOKEN)
    check(updated("enabled", mark) is not None and receiver.wait_for(
        lambda r: r["claims"] and r["claims"]["jti"] == held["jti"]) is not None,
        "enabling sends stream-updated, then the held event")
    call("POST", status_url, {"stream_id": sid, "status": "disabled"}, TOKEN)
    check(emit()["status"] == "dropped", "a disabled stream drops events")
    check(call("POST", status_url, {"stream_id": sid, "status": "bogus"}, TOKEN)[0] == 400, "unknown status is 400")
    call("POST", status_url, {"stream_id": sid, "status": "enabled"}, TOKEN)
    mark = len(receiver.received)
    status, body = call("POST", f"{meta['issuer']}/_test/status", {"stream_id": sid, "status": "paused"})
    check(status == 200 and updated("paused", mark) is not None, "a transmitter-side pause sends stream-updated")
    call("POST", f"{meta['issuer']}/_test/status", {"stream_id": sid, "status": "enabled"})


def poll(base, meta, emit):
    status, stream = call("POST", meta["configuration_endpoint"],
                          {"delivery": {"method": POLL}, "aud": "https://poller.example",
                           "events_requested": [CAEP + "session-revoked"]}, TOKEN)
    sid, url = stream["stream_id"], stream["delivery"]["endpoint_url"]
    check(status == 201 and url.startswith(base) and stream["aud"] == "https://poller.example",
          "poll stream created with a transmitter-supplied endpoint_url")
    first, second = emit(stream_id=sid), emit(stream_id=sid)
    check(first["status"] == "queued", "emit on a poll stream queues")
    check(call("POST", url, {"returnImmediately": True}, token="wrong")[0] == 401, "poll needs the bearer token")
    status, got = call("POST", url, {"maxEvents": 1, "returnImmediately": True}, TOKEN)
    check(status == 200 and list(got["sets"]) == [first["jti"]] and got["moreAvailable"], "poll: maxEvents 1")
    claims = jwt.decode(got["sets"][first["jti"]], options={"verify_signature": False})
    check(claims["aud"] == "https://poller.example", "polled SET carries the stream's aud")
    got = call("POST", url, {"maxEvents": 5, "returnImmediately": True}, TOKEN)[1]
    check(list(got["sets"]) == [first["jti"], second["jti"]], "unacknowledged SETs are redelivered")
    err = {"err": "invalid_key", "description": "test"}
    got = call("POST", url, {"returnImmediately": True, "ack": [first["jti"]], "setErrs": {second["jti"]: err}},
               TOKEN)[1]
    check(got == {"sets": {}, "moreAvailable": False}, "acknowledged and errored SETs are gone")
    state = call("GET", f"{base}/_test/state")[1]
    check(any(a["jti"] == first["jti"] for a in state["acks"])
          and any(e["jti"] == second["jti"] and e["error"] == err for e in state["set_errs"]),
          "state records acks and setErrs")

    started = time.monotonic()
    threading.Timer(0.5, lambda: emit(stream_id=sid)).start()
    got = call("POST", url, {"returnImmediately": False}, TOKEN)[1]
    waited = time.monotonic() - started
    check(len(got["sets"]) == 1 and 0.4 < waited < 1.8, f"long poll returns when an event comes ({waited:.2f}s)")
    call("POST", url, {"returnImmediately": True, "maxEvents": 0, "ack": list(got["sets"])}, TOKEN)
    started = time.monotonic()
    got = call("POST", url, {}, TOKEN)[1]
    waited = time.monotonic() - started
    check(got["sets"] == {} and 1.8 < waited < 3.5, f"an empty long poll waits its time ({waited:.2f}s)")

    call("POST", meta["verification_endpoint"], {"stream_id": sid, "state": "poll-state"}, TOKEN)
    got = call("POST", url, {"returnImmediately": False}, TOKEN)[1]
    (jti, token), = got["sets"].items()
    events = jwt.decode(token, options={"verify_signature": False})["events"]
    check(events == {SSF + "verification": {"state": "poll-state"}}, "verification queued for poll")
    call("POST", url, {"returnImmediately": True, "ack": [jti]}, TOKEN)
    state = call("GET", f"{base}/_test/state")[1]
    check(any(v["state"] == "poll-state" and v["answered"] == "ack" for v in state["verifications"]),
          "a polled verification is answered by its ack")


if __name__ == "__main__":
    main()
