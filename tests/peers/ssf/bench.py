"""`POST /_test/bench`: push many distinct SETs to one stream as fast as the
receiver takes them, to measure the receiver and not this peer.

Every token is signed before the clock starts (RSA signing in Python costs
about a millisecond), and each worker keeps one kept-alive connection, so the
measured seconds are the receiver's work plus the loopback round trips.
"""

import http.client
import socket
import threading
import time
import urllib.parse

from sets import BadRequest, build_set
from streams import PUSH, Delivery, connect


def _subject(subject):
    if isinstance(subject, dict):
        return subject
    if isinstance(subject, str):
        return {"format": "email", "email": subject}
    raise BadRequest("each of `subjects` is a subject identifier object or an email")


def _int(request, name, default, low, high):
    value = request.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BadRequest(f"`{name}` must be an integer in {low}..{high}")
    return value


class _Conn:
    """One kept-alive HTTP/1.1 connection that sends pre-built request bytes
    and reads just enough of each answer (status, Content-Length or chunked
    body): http.client costs this peer more CPU than the receiver's work."""

    def __init__(self, host, port):
        self.address = (host, port)
        self.sock, self.buf = None, b""

    def _recv(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed by the receiver")
        self.buf += data

    def _take(self, n):
        while len(self.buf) < n:
            self._recv()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _line(self):
        while b"\r\n" not in self.buf:
            self._recv()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def exchange(self, request):
        if self.sock is None:
            self.sock = socket.create_connection(self.address, timeout=30)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buf = b""
        self.sock.sendall(request)
        status = int(self._line().split(b" ", 2)[1])
        length, chunked, close = 0, False, False
        while True:
            line = self._line()
            if not line:
                break
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value
            elif name == b"connection":
                close = value == b"close"
        if chunked:
            while True:
                size = int(self._line().split(b";")[0], 16)
                self._take(size + 2)
                if size == 0:
                    break
        else:
            self._take(length)
        if close:
            self.close()
        return status

    def close(self):
        if self.sock is not None:
            self.sock.close()
        self.sock = None


def _request_bytes(url, delivery):
    parts = urllib.parse.urlsplit(url)
    path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    headers = dict(delivery.headers(), Host=parts.netloc, **{"Content-Length": str(len(delivery.body))})
    head = f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode("latin-1") + delivery.body


def _worker(url, ca_file, deliveries, tally, lock):
    statuses, errors = {}, 0
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        conn, path = connect(url, ca_file, timeout=30)
    else:
        fast = _Conn(parts.hostname, parts.port or 80)
        requests = [_request_bytes(url, d) for d in deliveries]
    for i, delivery in enumerate(deliveries):
        for attempt in (1, 2):
            try:
                if parts.scheme == "https":
                    conn.request("POST", path, body=delivery.body, headers=delivery.headers())
                    response = conn.getresponse()
                    response.read()
                    status = response.status
                else:
                    status = fast.exchange(requests[i])
                statuses[status] = statuses.get(status, 0) + 1
                break
            except (OSError, ValueError, IndexError, http.client.HTTPException):
                # The receiver may close a kept-alive connection; reconnect once.
                if parts.scheme == "https":
                    conn.close()
                    conn, path = connect(url, ca_file, timeout=30)
                else:
                    fast.close()
                if attempt == 2:
                    errors += 1
    if parts.scheme == "https":
        conn.close()
    else:
        fast.close()
    with lock:
        for status, n in statuses.items():
            tally["statuses"][status] = tally["statuses"].get(status, 0) + n
        tally["errors"] += errors


def run(ring, issuer, stream, request, ca_file=None):
    """Signs `count` SETs of `event` about `subjects` (cycled), then pushes
    them with `concurrency` workers. Returns {sent, accepted, seconds, ...}."""
    if stream.method != PUSH:
        raise BadRequest("the bench pushes: the stream must use push delivery")
    count = _int(request, "count", 1000, 1, 1_000_000)
    concurrency = _int(request, "concurrency", 4, 1, 256)
    subjects = request.get("subjects")
    if not isinstance(subjects, list) or not subjects:
        raise BadRequest("`subjects` must be a non-empty list")
    subjects = [_subject(s) for s in subjects]
    event = request.get("event")
    authorization = stream.delivery.get("authorization_header")

    started = time.monotonic()
    deliveries = []
    for i in range(count):
        sign = {"event": event, "payload": request.get("payload", {}), "sub_id": subjects[i % len(subjects)],
                "alg": request.get("alg", "RS256")}
        jti, token = build_set(ring, issuer, stream.aud, sign)
        deliveries.append(Delivery(jti, token, event, authorization))
    sign_seconds = time.monotonic() - started

    tally, lock = {"statuses": {}, "errors": 0}, threading.Lock()
    url = stream.delivery["endpoint_url"]
    workers = [threading.Thread(target=_worker, args=(url, ca_file, deliveries[i::concurrency], tally, lock))
               for i in range(concurrency)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.monotonic() - started
    sent = sum(tally["statuses"].values())
    return {"sent": sent, "accepted": tally["statuses"].get(202, 0), "seconds": round(seconds, 4),
            "per_second": round(sent / seconds, 1) if seconds > 0 else None,
            "statuses": {str(k): v for k, v in tally["statuses"].items()},
            "errors": tally["errors"], "sign_seconds": round(sign_seconds, 4)}
