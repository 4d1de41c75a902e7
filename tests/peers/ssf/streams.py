"""Streams and delivery for the test transmitter: the stream records (SSF 1.0
§8.1.1), push delivery (RFC 8935), the poll queues (RFC 8936), and the record
of everything delivered, acknowledged and refused that `/_test/state` shows.

The HTTP side (transmitter.py) only parses and routes; the rules live here.
No lock is ever held across a network call: the receiver, while answering a
push, may well call back (JWKS on an unknown kid, the status endpoint).
"""

import http.client
import json
import secrets
import ssl
import threading
import time
import urllib.parse

from sets import EVENTS_SUPPORTED, BadRequest

STATUSES = ("enabled", "paused", "disabled")
PUSH = "urn:ietf:rfc:8935"
POLL = "urn:ietf:rfc:8936"
BODY_RECORD_LIMIT = 4096


class NotFound(Exception):
    """No such stream (answered with 404)."""


def _string_list(value, name):
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadRequest(f"`{name}` must be a list of strings")
    return value


class Stream:
    """One stream: its receiver-supplied configuration, its status, and (poll
    delivery) the SETs delivered but not yet acknowledged."""

    def __init__(self, stream_id, aud):
        self.stream_id, self.aud = stream_id, aud
        self.delivery = {}
        self.events_requested, self.description = [], None
        self.status, self.reason = "enabled", None
        self.queue = []   # poll: [(jti, token)], oldest first, until acknowledged
        self.held = []    # paused: deliveries waiting for `enabled`
        self.subjects = []

    @property
    def method(self):
        return self.delivery.get("method")

    def configure(self, body, base, replace):
        """Applies the receiver-supplied members of a create/PATCH/PUT body.
        Transmitter-supplied members in the body are ignored (SSF 1.0 §8.1.1)."""
        if replace or "delivery" in body:
            self.delivery = self._delivery(body.get("delivery"), base)
        if replace or "events_requested" in body:
            self.events_requested = _string_list(body.get("events_requested"), "events_requested")
        if replace or "description" in body:
            description = body.get("description")
            if description is not None and not isinstance(description, str):
                raise BadRequest("`description` must be a string")
            self.description = description

    def _delivery(self, delivery, base):
        if not isinstance(delivery, dict):
            raise BadRequest("`delivery` must be an object with a `method`")
        method = delivery.get("method")
        if method == PUSH:
            url = delivery.get("endpoint_url")
            if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in ("http", "https"):
                raise BadRequest("push delivery needs an http(s) `endpoint_url`")
            out = {"method": PUSH, "endpoint_url": url}
            header = delivery.get("authorization_header")
            if header is not None:
                if not isinstance(header, str):
                    raise BadRequest("`authorization_header` must be a string")
                out["authorization_header"] = header
            return out
        if method == POLL:
            # The poll URL is the transmitter's to give (RFC 8936 §2).
            return {"method": POLL, "endpoint_url": f"{base}/ssf/poll/{self.stream_id}"}
        raise BadRequest(f"`delivery.method` must be {PUSH} or {POLL}")

    def to_json(self, issuer):
        out = {
            "stream_id": self.stream_id, "iss": issuer, "aud": self.aud,
            "delivery": dict(self.delivery),
            "events_supported": EVENTS_SUPPORTED,
            "events_requested": self.events_requested,
            "events_delivered": [e for e in self.events_requested if e in EVENTS_SUPPORTED],
            "min_verification_interval": 0,
        }
        if self.description is not None:
            out["description"] = self.description
        return out

    def status_json(self):
        out = {"stream_id": self.stream_id, "status": self.status}
        if self.reason is not None:
            out["reason"] = self.reason
        return out


def _read_body(response):
    raw = response.read()
    text = raw[:BODY_RECORD_LIMIT].decode("utf-8", "replace")
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


def connect(url, ca_file, timeout=10):
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=ca_file)
        conn = http.client.HTTPSConnection(parts.hostname, parts.port or 443, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    path = parts.path or "/"
    return conn, path + ("?" + parts.query if parts.query else "")


class Delivery:
    """What one push sends: the body, its Content-Type and Authorization
    (None: no header), set apart so the attacks can change each."""

    def __init__(self, jti, token, event, authorization, raw_body=None, content_type=None, endpoint_url=None):
        self.jti, self.token, self.event = jti, token, event
        self.endpoint_url = endpoint_url  # None: the stream's
        self.authorization = authorization
        self.body = (raw_body if raw_body is not None else token).encode("utf-8")
        self.content_type = content_type or "application/secevent+jwt"

    def headers(self):
        headers = {"Content-Type": self.content_type, "Accept": "application/json"}
        if self.authorization is not None:
            headers["Authorization"] = self.authorization
        return headers


class Registry:
    """Every stream and every record, behind one lock; `changed` wakes long
    polls when a SET is queued or a stream goes away."""

    def __init__(self, issuer, ca_file=None):
        self.issuer, self.ca_file = issuer, ca_file
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.streams = {}
        self.deliveries, self.polls, self.acks, self.set_errs = [], [], [], []
        self.verifications, self.management = [], []

    # -- streams ------------------------------------------------------------

    def create(self, body, aud, stream_id=None):
        stream = Stream(stream_id or secrets.token_hex(8), aud)
        stream.configure(body, self.issuer, replace=True)
        with self.lock:
            self.streams[stream.stream_id] = stream
            return stream.to_json(self.issuer)

    def get(self, stream_id):
        with self.lock:
            stream = self.streams.get(stream_id)
            if stream is None:
                raise NotFound(stream_id)
            return stream

    def update(self, body, replace):
        stream = self.get(body.get("stream_id"))
        with self.lock:
            current = stream.to_json(self.issuer)
            # SSF 1.0 (updating and replacing a stream): transmitter-supplied
            # members may be sent back, but must match; events_delivered as it
            # was before this update.
            for name in ("iss", "aud", "events_supported", "events_delivered", "min_verification_interval"):
                if name in body and body[name] != current[name]:
                    raise BadRequest(f"`{name}` is the transmitter's and does not match")
            stream.configure(body, self.issuer, replace)
            return stream.to_json(self.issuer)

    def delete(self, stream_id):
        with self.lock:
            if self.streams.pop(stream_id, None) is None:
                raise NotFound(stream_id)
            self.changed.notify_all()

    def all_json(self):
        with self.lock:
            return [s.to_json(self.issuer) for s in self.streams.values()]

    def set_status(self, stream_id, status, reason):
        """Sets the status; returns the deliveries held while paused, which
        the caller sends now that the stream is enabled again."""
        if status not in STATUSES:
            raise BadRequest(f"`status` must be one of {list(STATUSES)}")
        stream = self.get(stream_id)
        with self.lock:
            stream.status, stream.reason = status, reason
            held, stream.held = (stream.held, []) if status == "enabled" else ([], stream.held)
            return stream.status_json(), held

    def the_stream(self, stream_id):
        """The named stream, or the only one there is."""
        if stream_id is not None:
            return self.get(stream_id)
        with self.lock:
            if len(self.streams) != 1:
                raise BadRequest(f"{len(self.streams)} streams: name one with `stream_id`")
            return next(iter(self.streams.values()))

    # -- delivery -----------------------------------------------------------

    def deliver(self, stream, delivery, control=False):
        """Sends one SET on the stream's method. Paused streams hold ordinary
        events and disabled ones drop them (SSF 1.0 §8.1.2); control events
        (verification, stream-updated) always go out. Returns the record."""
        record = {"stream_id": stream.stream_id, "jti": delivery.jti, "event": delivery.event,
                  "method": stream.method, "time": time.time()}
        with self.lock:
            if not control and stream.status == "paused":
                stream.held.append(delivery)
                record.update(status="held", body=None)
            elif not control and stream.status == "disabled":
                record.update(status="dropped", body=None)
            elif stream.method == POLL:
                stream.queue.append((delivery.jti, delivery.token))
                self.changed.notify_all()
                record.update(status="queued", body=None)
            if "status" in record:
                self.deliveries.append(record)
                return record
            url = delivery.endpoint_url or stream.delivery["endpoint_url"]
        record.update(self.push(url, delivery))
        with self.lock:
            self.deliveries.append(record)
        return record

    def push(self, url, delivery):
        """POSTs one SET (RFC 8935 §2); the receiver's status and JSON body."""
        conn, path = connect(url, self.ca_file)
        try:
            conn.request("POST", path, body=delivery.body, headers=delivery.headers())
            response = conn.getresponse()
            return {"status": response.status, "body": _read_body(response)}
        except (OSError, http.client.HTTPException) as err:
            return {"status": None, "body": None, "error": f"{type(err).__name__}: {err}"}
        finally:
            conn.close()

    def poll(self, stream_id, request, wait_seconds):
        """One RFC 8936 poll: acknowledgements and errors first, then up to
        `maxEvents` unacknowledged SETs, waiting for one unless
        `returnImmediately`."""
        max_events = request.get("maxEvents")
        if max_events is not None and (not isinstance(max_events, int) or max_events < 0):
            raise BadRequest("`maxEvents` must be a non-negative integer")
        acks = _string_list(request.get("ack"), "ack")
        errs = request.get("setErrs") or {}
        if not isinstance(errs, dict):
            raise BadRequest("`setErrs` must be an object")
        stream = self.get(stream_id)
        if stream.method != POLL:
            raise BadRequest("this stream is not delivered by poll")
        deadline = time.monotonic() + wait_seconds
        with self.lock:
            done = set(acks) | set(errs)
            stream.queue = [item for item in stream.queue if item[0] not in done]
            now = time.time()
            self.acks.extend({"stream_id": stream_id, "jti": jti, "time": now} for jti in acks)
            self.set_errs.extend({"stream_id": stream_id, "jti": jti, "error": err, "time": now}
                                 for jti, err in errs.items())
            for entry in self.verifications:
                if entry["jti"] in done:
                    entry["answered"] = "ack" if entry["jti"] in acks else "setErr"
            wait = not request.get("returnImmediately", False) and max_events != 0
            while wait and not stream.queue and self.streams.get(stream_id) is stream:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.changed.wait(left)
            batch = stream.queue if max_events is None else stream.queue[:max_events]
            sets = dict(batch)
            more = len(stream.queue) > len(batch)
            self.polls.append({"stream_id": stream_id, "maxEvents": max_events,
                               "returnImmediately": request.get("returnImmediately", False),
                               "ack": acks, "setErrs": errs, "returned": list(sets), "time": now})
        return {"sets": sets, "moreAvailable": more}

    # -- the record ---------------------------------------------------------

    def state(self):
        with self.lock:
            streams = []
            for s in self.streams.values():
                entry = s.to_json(self.issuer)
                entry.update(s.status_json(), queued=[jti for jti, _ in s.queue],
                             held=[d.jti for d in s.held], subjects=list(s.subjects))
                streams.append(entry)
            return {"streams": streams, "deliveries": list(self.deliveries),
                    "polls": list(self.polls), "acks": list(self.acks),
                    "set_errs": list(self.set_errs), "verifications": [dict(v) for v in self.verifications],
                    "management": list(self.management)}

    def clear(self):
        with self.lock:
            for records in (self.deliveries, self.polls, self.acks, self.set_errs,
                            self.verifications, self.management):
                records.clear()
