#!/usr/bin/env python3
"""A Slack-compatible Web API on loopback for the acceptance runs: `conversations.open` and
`chat.postMessage` (JSON or form bodies, Bearer auth), answered as Slack answers them, plus
`GET /_requests` — every post received so far, for the checks to read.

    python fake_slack.py --port 0 --token xoxb-test --port-file /tmp/slack.port
"""

import argparse
import hashlib
import json
import pathlib
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
POSTS: list[dict] = []
OPENED: list[dict] = []


class SlackHandler(BaseHTTPRequestHandler):
    token = ""

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        pass

    def answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json; charset=utf-8")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 - the stdlib's name
        if self.path == "/_requests":
            with LOCK:
                self.answer(200, {"posts": POSTS, "opened": OPENED})
        else:
            self.answer(404, {"ok": False, "error": "unknown_method"})

    def do_POST(self):  # noqa: N802 - the stdlib's name
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        content_type = self.headers.get("content-type", "")
        if content_type.startswith("application/json"):
            body = json.loads(raw or b"{}")
        else:
            body = {key: values[0] for key, values in urllib.parse.parse_qs(raw.decode()).items()}
        if self.headers.get("authorization") != f"Bearer {self.token}" and body.get("token") != self.token:
            self.answer(200, {"ok": False, "error": "invalid_auth"})
            return
        method = self.path.rstrip("/").rsplit("/", 1)[-1]
        if method == "conversations.open":
            users = str(body.get("users", ""))
            if not users.startswith("U"):
                self.answer(200, {"ok": False, "error": "user_not_found"})
                return
            channel = "D" + hashlib.sha256(users.encode()).hexdigest()[:10].upper()
            with LOCK:
                OPENED.append({"user": users, "channel": channel, "at": time.time()})
            self.answer(200, {"ok": True, "channel": {"id": channel}})
        elif method == "chat.postMessage":
            with LOCK:
                POSTS.append({"channel": body.get("channel"), "text": body.get("text", ""),
                              "blocks": body.get("blocks"), "at": time.time()})
                ts = f"{time.time():.6f}"
            self.answer(200, {"ok": True, "channel": body.get("channel"), "ts": ts})
        else:
            self.answer(200, {"ok": False, "error": "unknown_method"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", required=True)
    parser.add_argument("--port-file", type=pathlib.Path, required=True)
    args = parser.parse_args()
    SlackHandler.token = args.token
    server = ThreadingHTTPServer(("127.0.0.1", args.port), SlackHandler)
    args.port_file.write_text(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
