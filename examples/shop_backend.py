#!/usr/bin/env python3
"""A shop backend receiving Warifu merchant webhooks (docs/WEBHOOKS.md), Python 3 stdlib only.

It verifies `Warifu-Signature` (HMAC-SHA256 under the endpoint's secret over "<t>.<body>",
at most 300 s from this clock), answers 400 to anything that does not verify, acts once per
event id (retries and replays repeat the id) and answers 200 to event types it does not know.

    WARIFU_WEBHOOK_SECRET=whsec_... python3 examples/shop_backend.py 8000

It prints `listening PORT`, then one JSON line per new event.
"""
import hashlib, hmac, http.server, json, os, sys, time

SECRET, SEEN = os.environ["WARIFU_WEBHOOK_SECRET"].encode(), set()


def verified(header, body, tolerance=300):
    fields = [f.strip().split("=", 1) for f in header.split(",") if "=" in f]
    t = next((v for k, v in fields if k == "t"), "")
    mac = hmac.new(SECRET, t.encode() + b"." + body, hashlib.sha256).hexdigest()
    signed = any(k == "v1" and hmac.compare_digest(v, mac) for k, v in fields)
    return signed and t.isdigit() and abs(time.time() - int(t)) <= tolerance


class Webhook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not verified(self.headers.get("Warifu-Signature", ""), body):
            return self.answer(400)  # wrong secret, altered body, or a replayed old request
        event = json.loads(body)
        if event["id"] not in SEEN:  # act once: ship, email, book-keep ...
            SEEN.add(event["id"])
            order = event["data"]
            print(json.dumps({"id": event["id"], "type": event["type"],
                              "order_id": order["order_id"], "state": order["state"]}), flush=True)
        self.answer(200)

    def answer(self, status):
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 8000), Webhook)
print(f"listening {server.server_port}", flush=True)
server.serve_forever()
