#!/usr/bin/env python3
"""Loopback OpenID Shared Signals Framework 1.0 transmitter for doorward's
end-to-end tests.

It publishes its metadata (SSF 1.0 §7.1) and JWKS, manages streams (§8.1),
delivers Security Event Tokens by push (RFC 8935) and poll (RFC 8936), and
offers a control API under `/_test/` with which a test emits events (honest
ones and attacks), rotates keys, reads what happened and runs a benchmark.
See README.md next to this file. Test use only: it listens on 127.0.0.1.

stdout carries exactly one line, a JSON object with the endpoints, printed
once the server listens; everything else goes to stderr.
"""

import argparse
import hmac
import json
import os
import queue
import secrets
import signal
import stat
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench  # noqa: E402
from sets import (EVENTS_SUPPORTED, STREAM_UPDATED, VERIFICATION, BadRequest, KeyRing,  # noqa: E402
                  build_set, control_set)
from streams import POLL, PUSH, Delivery, NotFound, Registry  # noqa: E402

# Control bodies may carry an oversized `raw_body` for the size-limit attack.
MAX_REQUEST_BODY = 64 * 1024 * 1024


def log(message):
    sys.stderr.write(f"ssf-peer: {message}\n")
    sys.stderr.flush()


class HttpError(Exception):
    def __init__(self, status, err, description, headers=None):
        super().__init__(description)
        self.status, self.err, self.description = status, err, description
        self.headers = headers or {}


class Transmitter:
    """The transmitter's state: keys, streams, the bearer token that guards
    stream management and polling, and a worker that sends the events the
    transmitter makes itself (verification, stream-updated) after the request
    that caused them has been answered, in order."""

    def __init__(self, base, token, audience, long_poll_seconds, ca_file):
        self.base = self.issuer = base
        self.token, self.audience = token, audience
        self.long_poll_seconds = long_poll_seconds
        self.ring = KeyRing()
        self.registry = Registry(base, ca_file)
        self.later = queue.Queue()
        threading.Thread(target=self._run_later, name="control-events", daemon=True).start()

    def _run_later(self):
        while True:
            job = self.later.get()
            try:
                job()
            except Exception as err:  # noqa: BLE001 - a failed send must not stop the worker
                log(f"control event failed: {type(err).__name__}: {err}")

    def metadata(self):
        return {
            "spec_version": "1_0",
            "issuer": self.issuer,
            "jwks_uri": f"{self.base}/jwks.json",
            "delivery_methods_supported": [PUSH, POLL],
            "configuration_endpoint": f"{self.base}/ssf/stream",
            "status_endpoint": f"{self.base}/ssf/status",
            "add_subject_endpoint": f"{self.base}/ssf/subjects/add",
            "remove_subject_endpoint": f"{self.base}/ssf/subjects/remove",
            "verification_endpoint": f"{self.base}/ssf/verify",
            "authorization_schemes": [{"spec_urn": "urn:ietf:rfc:6750"}],
            "default_subjects": "NONE",
        }

    def audience_for(self, body):
        """The aud a new stream's SETs carry: `--audience`, else (an extension
        for tests) the body's `aud`, else the push endpoint's origin."""
        if self.audience:
            return self.audience
        if isinstance(body.get("aud"), (str, list)):
            return body["aud"]
        delivery = body.get("delivery")
        url = delivery.get("endpoint_url") if isinstance(delivery, dict) else None
        if isinstance(url, str):
            parts = urllib.parse.urlsplit(url)
            if parts.scheme and parts.netloc:
                return f"{parts.scheme}://{parts.netloc}"
        raise BadRequest("no audience for this stream: start with --audience, or send `aud`")

    # -- events the transmitter makes itself --------------------------------

    def send_control(self, stream, event, payload, on_done=None):
        jti, token = control_set(self.ring, self.issuer, stream.aud, stream.stream_id, event, payload)
        if on_done:
            on_done(jti, None)
        record = self.registry.deliver(
            stream, Delivery(jti, token, event, stream.delivery.get("authorization_header")), control=True)
        if on_done:
            on_done(jti, record)

    def verify(self, stream, state):
        entry = {"stream_id": stream.stream_id, "state": state, "jti": None, "status": None,
                 "body": None, "answered": None, "time": time.time()}

        def note(jti, record):
            with self.registry.lock:
                if record is None:
                    entry["jti"] = jti
                    self.registry.verifications.append(entry)
                else:
                    entry.update(status=record["status"], body=record["body"])
                    if stream.method == PUSH:
                        entry["answered"] = record["status"]

        payload = {} if state is None else {"state": state}
        self.later.put(lambda: self.send_control(stream, VERIFICATION, payload, note))

    def status_changed(self, stream, status_json, held):
        payload = {k: v for k, v in status_json.items() if k in ("status", "reason")}

        def send():
            self.send_control(stream, STREAM_UPDATED, payload)
            for delivery in held:
                self.registry.deliver(stream, delivery)
        self.later.put(send)

    # -- the control API ----------------------------------------------------

    def emit(self, body):
        deliver = body.get("deliver", True) is not False
        stream = None
        if deliver or body.get("stream_id") is not None or len(self.registry.streams) == 1:
            stream = self.registry.the_stream(body.get("stream_id"))
        aud = stream.aud if stream else self.audience
        jti, token = build_set(self.ring, self.issuer, aud, body)
        if not deliver:
            return {"jti": jti, "token": token}
        authorization = (body["authorization"] if "authorization" in body
                         else stream.delivery.get("authorization_header"))
        raw_body = body.get("raw_body")
        if raw_body is not None and not isinstance(raw_body, str):
            raise BadRequest("`raw_body` must be a string")
        endpoint_url = body.get("endpoint_url")
        if endpoint_url is not None and not isinstance(endpoint_url, str):
            raise BadRequest("`endpoint_url` must be a string")
        event = body.get("event") or ",".join(body.get("events") or {})
        record = self.registry.deliver(
            stream, Delivery(jti, token, event, authorization, raw_body, body.get("content_type"), endpoint_url))
        out = {"jti": jti, "token": token, "status": record["status"], "body": record["body"]}
        if "error" in record:
            out["error"] = record["error"]
        return out


def _stream_id(query, body=None):
    value = (query.get("stream_id") or [None])[0]
    if value is None and isinstance(body, dict):
        value = body.get("stream_id")
    if not isinstance(value, str) or not value:
        raise BadRequest("`stream_id` is required")
    return value


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, for the receiver's polls and the bench
    server_version = "doorward-ssf-peer"
    T = None  # the Transmitter, set in main()

    def log_message(self, fmt, *args):
        log(f"{self.address_string()} {fmt % args}")

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def reply(self, status, value=None, headers=None):
        data = b"" if value is None else json.dumps(value).encode()
        self.send_response(status)
        if value is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")  # a rotation or a status change shows at once
        for name, header in (headers or {}).items():
            self.send_header(name, header)
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        """Reads the whole body first, whatever the answer will be: an unread
        body would be taken for the next request on a kept-alive connection."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.raw = self.read_chunked()
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_REQUEST_BODY:
            self.close_connection = True
            raise HttpError(413, "invalid_request", "a body of at most 64 MiB is required")
        self.raw = self.rfile.read(length) if length else b""

    def read_chunked(self):
        chunks, total = [], 0
        while True:
            try:
                size = int(self.rfile.readline(1024).split(b";")[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                raise HttpError(400, "invalid_request", "a malformed chunked body") from None
            total += size
            if total > MAX_REQUEST_BODY:
                self.close_connection = True
                raise HttpError(413, "invalid_request", "a body of at most 64 MiB is required")
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)  # the CRLF after the chunk

    def read_json(self):
        raw = self.raw
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except ValueError:
            raise HttpError(400, "invalid_request", "the body is not JSON") from None
        if not isinstance(value, dict):
            raise HttpError(400, "invalid_request", "the body must be a JSON object")
        return value

    def authorize(self):
        header = self.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.T.token.encode()):
            raise HttpError(401, "authentication_failed", "a valid bearer token is required",
                            {"WWW-Authenticate": 'Bearer realm="ssf"'})

    def dispatch(self, method):
        url = urllib.parse.urlsplit(self.path)
        path, query = url.path, urllib.parse.parse_qs(url.query)
        self.raw = b""
        try:
            self.read_body()
            if path.startswith("/_test/"):
                if self.client_address[0] not in ("127.0.0.1", "::1"):
                    raise HttpError(403, "access_denied", "the control API is for loopback only")
                self.control(method, path, self.read_json())
            elif path.startswith("/ssf/"):
                self.managed(method, path, query)
            elif path == "/.well-known/ssf-configuration" and method == "GET":
                self.reply(200, self.T.metadata())
            elif path == "/jwks.json" and method == "GET":
                self.reply(200, self.T.ring.jwks())
            else:
                raise HttpError(404, "not_found", f"no {method} {path}")
        except HttpError as err:
            self.reply(err.status, {"err": err.err, "description": err.description}, err.headers)
        except BadRequest as err:
            self.reply(400, {"err": "invalid_request", "description": str(err)})
        except NotFound as err:
            self.reply(404, {"err": "not_found", "description": f"no stream {err}"})
        except Exception as err:  # noqa: BLE001 - a malformed test request gets an answer, not a hang
            log(f"{method} {path} failed: {type(err).__name__}: {err}")
            self.reply(500, {"err": "server_error", "description": f"{type(err).__name__}: {err}"})

    def managed(self, method, path, query):
        """The receiver-facing endpoints, all behind the bearer token. Each
        call is recorded (with whether it was authorized) for the test."""
        entry = {"method": method, "path": path, "query": self.path.partition("?")[2],
                 "authorized": False, "time": time.time()}
        with self.T.registry.lock:
            self.T.registry.management.append(entry)
        self.authorize()
        entry["authorized"] = True
        body = self.read_json() if method in ("POST", "PUT", "PATCH") else {}
        entry["body"] = body
        registry = self.T.registry
        if path.startswith("/ssf/poll/") and method == "POST":
            stream_id = path[len("/ssf/poll/"):]
            self.reply(200, registry.poll(stream_id, body, self.T.long_poll_seconds))
        elif path == "/ssf/stream":
            if method == "GET":
                if "stream_id" in query:
                    self.reply(200, registry.get(_stream_id(query)).to_json(self.T.issuer))
                else:
                    self.reply(200, registry.all_json())
            elif method == "POST":
                self.reply(201, registry.create(body, self.T.audience_for(body)))
            elif method in ("PATCH", "PUT"):
                _stream_id({}, body)
                self.reply(200, registry.update(body, replace=method == "PUT"))
            elif method == "DELETE":
                registry.delete(_stream_id(query))
                self.reply(204)
            else:
                raise HttpError(405, "invalid_request", f"{method} on the configuration endpoint")
        elif path == "/ssf/status" and method == "GET":
            self.reply(200, registry.get(_stream_id(query)).status_json())
        elif path == "/ssf/status" and method == "POST":
            stream = registry.get(_stream_id(query, body))
            reason = body.get("reason")
            status_json, held = registry.set_status(stream.stream_id, body.get("status"), reason)
            self.reply(200, status_json)
            self.T.status_changed(stream, status_json, held)
        elif path == "/ssf/verify" and method == "POST":
            stream = registry.get(_stream_id({}, body))
            self.reply(204)
            self.T.verify(stream, body.get("state"))
        elif path in ("/ssf/subjects/add", "/ssf/subjects/remove") and method == "POST":
            stream = registry.get(_stream_id({}, body))
            if not isinstance(body.get("subject"), dict):
                raise BadRequest("`subject` must be a subject identifier object")
            with registry.lock:
                if path.endswith("add"):
                    stream.subjects.append(body["subject"])
                else:
                    stream.subjects = [s for s in stream.subjects if s != body["subject"]]
            self.reply(200 if path.endswith("add") else 204)
        else:
            raise HttpError(404, "not_found", f"no {method} {path}")

    def control(self, method, path, body):
        t = self.T
        if path == "/_test/emit" and method == "POST":
            self.reply(200, t.emit(body))
        elif path == "/_test/rotate" and method == "POST":
            kids = t.ring.rotate(retire_old=bool(body.get("retire_old")))
            self.reply(200, {"kid": kids["RS256"], "kids": kids})
        elif path == "/_test/state" and method == "GET":
            self.reply(200, t.registry.state())
        elif path == "/_test/state" and method == "DELETE":
            t.registry.clear()
            self.reply(204)
        elif path == "/_test/streams" and method == "POST":
            aud = body.get("aud") if body.get("aud") is not None else t.audience_for(body)
            self.reply(201, t.registry.create(body, aud, body.get("stream_id")))
        elif path == "/_test/status" and method == "POST":
            # The transmitter changing the status on its own (SSF 1.0: it
            # then MUST send stream-updated, before it stops sending).
            stream = t.registry.the_stream(body.get("stream_id"))
            status_json, held = t.registry.set_status(stream.stream_id, body.get("status"), body.get("reason"))
            self.reply(200, status_json)
            t.status_changed(stream, status_json, held)
        elif path == "/_test/bench" and method == "POST":
            stream = t.registry.the_stream(body.get("stream_id"))
            self.reply(200, bench.run(t.ring, t.issuer, stream, body, t.registry.ca_file))
        elif path == "/_test/health" and method == "GET":
            self.reply(200, {"status": "ok", "kids": t.ring.kids(), "events_supported": EVENTS_SUPPORTED})
        else:
            raise HttpError(404, "not_found", f"no {method} {path}")


def watch_stdin():
    """Exit when stdin reaches EOF: the test that started us is gone."""
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    log("stdin closed, exiting")
    os._exit(0)


def stdin_is_pipe():
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def main():
    parser = argparse.ArgumentParser(description="loopback SSF 1.0 transmitter for tests")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SSF_PORT", "0")))
    parser.add_argument("--token", default=os.environ.get("SSF_TOKEN"),
                        help="bearer token for stream management and polling (default: random, printed)")
    parser.add_argument("--audience", default=os.environ.get("SSF_AUDIENCE"),
                        help="aud of every stream's SETs (default: the push endpoint's origin)")
    parser.add_argument("--long-poll-seconds", type=float, default=10.0)
    parser.add_argument("--ca-file", default=os.environ.get("SSF_CA_FILE"),
                        help="CA bundle to trust when pushing to https endpoints")
    parser.add_argument("--exit-on-stdin-eof", choices=("auto", "1", "0"),
                        default=os.environ.get("SSF_EXIT_ON_STDIN_EOF", "auto"))
    args = parser.parse_args()

    try:
        httpd = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    except OSError as err:
        log(f"cannot listen on 127.0.0.1:{args.port}: {err}")
        sys.exit(2)
    httpd.daemon_threads = True
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    token = args.token or secrets.token_urlsafe(24)
    Handler.T = Transmitter(base, token, args.audience, args.long_poll_seconds, args.ca_file)

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    if args.exit_on_stdin_eof == "1" or (args.exit_on_stdin_eof == "auto" and stdin_is_pipe()):
        threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()

    line = dict(Handler.T.metadata(), base=base, token=token,
                configuration_url=f"{base}/.well-known/ssf-configuration", kids=Handler.T.ring.kids())
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()
    log(f"listening on {base}")
    httpd.serve_forever(poll_interval=0.5)


if __name__ == "__main__":
    main()
