"""`POST /_test/bench`: push many distinct SETs to one stream as fast as the
receiver takes them, to measure the receiver and not this peer.

Every token is signed before the clock starts (RSA signing in Python costs
about a millisecond), and each worker keeps one kept-alive connection, so the
measured seconds are the receiver's work plus the loopback round trips.
"""

import http.client
import threading
import time

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


def _worker(url, ca_file, deliveries, tally, lock):
    statuses, errors = {}, 0
    conn, path = connect(url, ca_file, timeout=30)
    for delivery in deliveries:
        for attempt in (1, 2):
            try:
                conn.request("POST", path, body=delivery.body, headers=delivery.headers())
                response = conn.getresponse()
                response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1
                break
            except (OSError, http.client.HTTPException):
                # The receiver may close a kept-alive connection; reconnect once.
                conn.close()
                conn, path = connect(url, ca_file, timeout=30)
                if attempt == 2:
                    errors += 1
    conn.close()
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
