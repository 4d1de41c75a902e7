#!/usr/bin/env python3
"""Log in through doorward at the demo/bench OpenID provider without a
browser, and print the session cookie (NAME=VALUE) for load tools.

usage: bench/login.py http://127.0.0.1:4180/ alice
"""
import http.cookiejar
import sys
import urllib.parse
import urllib.request
from html.parser import HTMLParser


class FormParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.action, self.fields, self.in_form = None, {}, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and self.action is None:
            self.action, self.in_form = attrs.get("action", ""), True
        elif tag == "input" and self.in_form and attrs.get("name"):
            self.fields[attrs["name"]] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self.in_form = False


def main():
    start, user = sys.argv[1], sys.argv[2]
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    response = opener.open(start, timeout=10)
    for _ in range(4):
        body = response.read().decode("utf-8", "replace")
        if "<form" not in body or response.geturl().startswith(start.rstrip("/")):
            break
        form = FormParser()
        form.feed(body)
        if "login" in form.fields:
            form.fields["login"], form.fields["password"] = user, "any"
        action = urllib.parse.urljoin(response.geturl(), form.action)
        data = urllib.parse.urlencode(form.fields).encode()
        response = opener.open(action, data=data, timeout=10)
    if response.status != 200:
        sys.exit(f"login ended with HTTP {response.status} at {response.geturl()}")
    for cookie in jar:
        if cookie.name.endswith("doorward") and "-login-" not in cookie.name:
            print(f"{cookie.name}={cookie.value}")
            return
    sys.exit("no doorward session cookie after login")


if __name__ == "__main__":
    main()
