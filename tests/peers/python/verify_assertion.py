"""Verify a doorward identity assertion (X-Doorward-Assertion) with PyJWT.

This is what an upstream app written in Python would do: fetch doorward's
JWKS, pick the key named by the token's `kid`, and check the signature
(EdDSA or ES256), `iss`, `aud`, `exp`, `nbf` and `iat`.

    verify_assertion.py --jwks-url URL --issuer ISS --audience AUD [TOKEN]

Each option falls back to an environment variable (JWKS_URL, ISSUER,
AUDIENCE, ASSERTION); TOKEN `-` reads the token from stdin.

Exit 0: the claims, as JSON, on stdout.
Exit 1: the token does not verify; `ErrorClass: message` (PyJWT's) on stderr.
Exit 2: bad usage.
"""

import argparse
import json
import os
import sys

import jwt

ALGORITHMS = ["EdDSA", "ES256"]
REQUIRED_CLAIMS = ["iss", "aud", "sub", "iat", "nbf", "exp"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jwks-url", default=os.environ.get("JWKS_URL"))
    parser.add_argument("--issuer", default=os.environ.get("ISSUER"))
    parser.add_argument("--audience", default=os.environ.get("AUDIENCE"))
    parser.add_argument("token", nargs="?", default=os.environ.get("ASSERTION"))
    args = parser.parse_args()
    for name in ("jwks_url", "issuer", "audience", "token"):
        if not getattr(args, name):
            parser.error(f"{name.replace('_', '-')} is required")
    token = sys.stdin.read().strip() if args.token == "-" else args.token

    try:
        signing_key = jwt.PyJWKClient(args.jwks_url, timeout=10).get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            signing_key.key,
            algorithms=ALGORITHMS,
            audience=args.audience,
            issuer=args.issuer,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.PyJWTError as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return 1
    json.dump(claims, sys.stdout, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
