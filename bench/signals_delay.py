#!/usr/bin/env python3
"""Push to refusal on the other replica, for bench/signals.sh.

For each logged-in user (a line `user NAME=VALUE` of --cookies): the test
transmitter builds a session-revoked SET about them (iss_sub, not
delivered); replica B is checked to admit their cookie; the clock starts;
the SET is pushed to replica A; replica B is asked again and again, on one
kept-alive connection, with the cookie until it stops admitting it (a
redirect to the login, or 401). The delay is the first refusal's answer
time minus the push's start. Prints a Markdown report.
"""
import argparse
import http.client
import json
import math
import time
import urllib.parse
import urllib.request

REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
GIVE_UP = 5.0  # seconds: a session still admitted then counts as a miss


class Client:
    """One kept-alive connection to a URL's host, reconnecting if closed."""

    def __init__(self, url):
        self.parts = urllib.parse.urlsplit(url)
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.parts.hostname, self.parts.port, timeout=10)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                response = self.conn.getresponse()
                response.read()
                if response.getheader("connection", "").lower() == "close":
                    self.close()
                return response.status
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None


def build_set(transmitter, stream, issuer, user):
    body = json.dumps({"stream_id": stream, "event": REVOKED, "deliver": False,
                       "sub_id": {"format": "iss_sub", "iss": issuer, "sub": user}}).encode()
    request = urllib.request.Request(f"{transmitter}/_test/emit", data=body,
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["token"]


def percentile(values, p):
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(p / 100 * len(ordered)))) - 1]


def main():
    args = argparse.ArgumentParser()
    for name in ("transmitter", "stream", "push", "push-token", "replica", "issuer", "cookies"):
        args.add_argument(f"--{name}", required=True)
    args.add_argument("--target-ms", type=float, default=1000)
    args = args.parse_args()

    push, replica = Client(args.push), Client(args.replica)
    push_path = urllib.parse.urlsplit(args.push).path
    push_headers = {"authorization": f"Bearer {args.push_token}", "content-type": "application/secevent+jwt",
                    "accept": "application/json"}
    delays, acks, polls, refusals, misses, skipped = [], [], [], {}, 0, 0
    with open(args.cookies) as lines:
        users = [line.split(" ", 1) for line in lines.read().splitlines() if line.strip()]
    for user, cookie in users:
        token = build_set(args.transmitter, args.stream, args.issuer, user)
        page = {"cookie": cookie, "accept": "text/html"}
        if replica.request("GET", "/", headers=page) != 200:
            skipped += 1  # not admitted before the push: nothing to measure
            continue
        started = time.perf_counter()
        status = push.request("POST", push_path, body=token.encode(), headers=push_headers)
        acked = time.perf_counter()
        if status != 202:
            raise SystemExit(f"the push for {user} answered {status}")
        asked = 0
        while True:
            status = replica.request("GET", "/", headers=page)
            now = time.perf_counter()
            asked += 1
            if status != 200:
                refusals[status] = refusals.get(status, 0) + 1
                delays.append(now - started)
                break
            if now - started > GIVE_UP:
                misses += 1
                break
        acks.append(acked - started)
        polls.append(asked)

    ms = lambda s: f"{s * 1000:.1f}"  # noqa: E731
    print(f"{len(users)} sessions logged in through replica B; {len(delays)} refused after the push,"
          f" {misses} still admitted after {GIVE_UP:.0f} s, {skipped} not admitted before it.")
    if not delays:
        print("\nNo delay measured.")
        return
    p99 = percentile(delays, 99)
    verdict = "PASS" if p99 * 1000 < args.target_ms and misses == 0 else "MISS"
    print()
    print("| measured | p50 ms | p90 ms | p99 ms | max ms | target |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(f"| push start → first refusal on replica B | {ms(percentile(delays, 50))} | {ms(percentile(delays, 90))}"
          f" | {ms(p99)} | {ms(max(delays))} | {verdict} (p99 < {args.target_ms:.0f} ms) |")
    print(f"| push start → A's 202 | {ms(percentile(acks, 50))} | {ms(percentile(acks, 90))}"
          f" | {ms(percentile(acks, 99))} | {ms(max(acks))} | |")
    print()
    print(f"Refusals by status: {json.dumps({str(k): v for k, v in sorted(refusals.items())})};"
          f" requests to B per session after the push: median {percentile(polls, 50)}, max {max(polls)}.")


if __name__ == "__main__":
    main()
