#!/usr/bin/env python3
"""A sample upstream app for the doorward demo: it shows every request header
it receives, so you can see what doorward forwards (and what it strips)."""
import html
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        rows = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
            for k, v in self.headers.items()
        )
        if "json" in self.headers.get("Accept", ""):
            body = json.dumps({"path": self.path, "headers": dict(self.headers.items())}).encode()
            ctype = "application/json"
        else:
            body = (
                "<!doctype html><meta charset=utf-8><title>demo app</title>"
                "<body style='font-family:system-ui;max-width:50rem;margin:2rem auto'>"
                f"<h1>Sample app behind doorward</h1><p>Path: <code>{html.escape(self.path)}</code></p>"
                f"<table border=1 cellpadding=4>{rows}</table></body>"
            ).encode()
            ctype = "text/html; charset=utf-8"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, fmt, *args):
        sys.stderr.write("app: " + fmt % args + "\n")


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
