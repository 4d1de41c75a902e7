#!/usr/bin/env python3
"""Log in through doorward (or another relying party, e.g. Apache with
mod_auth_openidc) at the demo/bench OpenID provider without a browser, and
print the session cookie (NAME=VALUE) for load tools.

usage: bench/login.py http://127.0.0.1:4180/ alice [COOKIE_NAME]

Without COOKIE_NAME it prints doorward's session cookie; with it, the cookie
of exactly that name (mod_auth_openidc: mod_auth_openidc_session).
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
    wanted = sys.argv[3] if len(sys.argv) > 3 else None
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    # Ask like a browser: mod_auth_openidc answers 401 instead of a login
    # redirect to a client that does not accept HTML.
    opener.addheaders = [("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")]
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
        if wanted is not None:
            found = cookie.name == wanted
        else:
            found = cookie.name.endswith("doorward") and "-login-" not in cookie.name
        if found:
            print(f"{cookie.name}={cookie.value}")
            return
    sys.exit(f"no {wanted or 'doorward'} session cookie after login")


if __name__ == "__main__":
    main()
