"""A receiver that verifies tminus's deliveries with the public
standardwebhooks package (PyPI), as an integrator's Python server would.

Prints its port, then reads the subscription's secret from stdin. Each POST
it verifies is answered 204 and written to the file named by argv[1] as
{"id", "email"}; any other is answered 401 and written as {"refused": id}.
"""

import http.server
import json
import sys

from standardwebhooks.webhooks import Webhook

out = open(sys.argv[1], "a", encoding="utf-8")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        headers = dict(self.headers.items())
        try:
            payload = WEBHOOK.verify(body, headers)
            line, status = {"id": headers["webhook-id"], "email": payload["email"]}, 204
        except Exception:
            line, status = {"refused": headers.get("webhook-id")}, 401
        out.write(json.dumps(line) + "\n")
        out.flush()
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
WEBHOOK = Webhook(sys.stdin.readline().strip())
server.serve_forever()
