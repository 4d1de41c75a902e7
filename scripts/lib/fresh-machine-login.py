#!/usr/bin/env python3
"""Signs alice in through the running demo (scripts/demo.sh) the way a browser
does, and checks what the sample app then receives.

Used by scripts/fresh-machine-check.sh inside the fresh root: it follows
doorward's login redirect to the demo's real OpenID provider (oidc-provider),
posts its login and consent forms (alice, any password), follows the
callback back to doorward with a cookie jar, then asks the app (through
doorward) for the headers it got. Exits non-zero unless the app saw alice's
identity (demo/doorward.toml keeps doorward's default user claim, the email,
so X-Forwarded-User and X-Forwarded-Email are both alice@example.com), and
saw no identity for an anonymous caller that sends its own X-Forwarded-User."""
import http.cookiejar
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

DOORWARD = "http://127.0.0.1:4180"
PROVIDER_PORT = 4181
LOGIN = "alice"
# What the app gets for her: X-Forwarded-User (the email, doorward's default
# user claim) and X-Forwarded-Email.
USER, EMAIL = "alice@example.com", "alice@example.com"


def form_fields(page):
    """The action and the hidden prompt of oidc-provider's interaction form."""
    action = re.search(r'<form[^>]*\baction="([^"]+)"', page)
    prompt = re.search(r'name="prompt"\s+value="(\w+)"', page)
    if not action or not prompt:
        raise SystemExit(f"login: no interaction form on the provider's page:\n{page[:500]}")
    return action.group(1), prompt.group(1)


def sign_in(opener):
    """Walks the login through the provider's forms; returns the final URL."""
    response = opener.open(DOORWARD + "/", timeout=30)
    for _ in range(4):
        url = response.geturl()
        parts = urllib.parse.urlsplit(url)
        if parts.port != PROVIDER_PORT or "/interaction/" not in parts.path:
            return url
        action, prompt = form_fields(response.read().decode("utf-8", "replace"))
        fields = {"prompt": prompt}
        if prompt == "login":
            fields.update(login=LOGIN, password="any password")
        print(f"login: provider asks for {prompt}, form posted")
        data = urllib.parse.urlencode(fields).encode()
        response = opener.open(urllib.parse.urljoin(url, action), data=data, timeout=30)
    raise SystemExit("login: the provider kept asking (more than four forms)")


def app_headers(opener, extra=None):
    """The request headers the sample app received, names lowercased."""
    request = urllib.request.Request(DOORWARD + "/whoami", headers={"Accept": "application/json", **(extra or {})})
    with opener.open(request, timeout=30) as response:
        seen = json.load(response)["headers"]
    return {name.lower(): value for name, value in seen.items()}


def main():
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    browser.addheaders = [("Accept", "text/html")]
    final = sign_in(browser)
    print(f"login: back at {final} with {len(jar)} cookie(s)")
    headers = app_headers(browser)
    user, email = headers.get("x-forwarded-user"), headers.get("x-forwarded-email")
    print(f"login: the app got X-Forwarded-User: {user!r}, X-Forwarded-Email: {email!r}")
    if (user, email) != (USER, EMAIL):
        raise SystemExit(f"login: FAILED, expected {USER!r} and {EMAIL!r}")

    # The README's spoofing line: a client's own identity header never arrives.
    anonymous = urllib.request.build_opener()
    spoofed = urllib.request.Request(DOORWARD + "/public/", headers={"Accept": "application/json", "X-Forwarded-User": "mallory"})
    with anonymous.open(spoofed, timeout=30) as response:
        seen = {name.lower(): value for name, value in json.load(response)["headers"].items()}
    print(f"login: a spoofed X-Forwarded-User on /public/ reached the app as {seen.get('x-forwarded-user')!r}")
    if seen.get("x-forwarded-user") == "mallory":
        raise SystemExit("login: FAILED, the app saw the client's own X-Forwarded-User")
    print("login: OK")


if __name__ == "__main__":
    try:
        main()
    except urllib.error.URLError as error:
        sys.exit(f"login: FAILED, {error}")
