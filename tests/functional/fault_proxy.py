"""A loopback HTTP proxy in front of a moto server that misbehaves as AWS does on a bad day: throttling, 500s,
connections reset before the request reaches the service, and connections reset after it did (the write is
applied, the client never hears so). Faults are drawn from a seeded generator, so a run can be repeated."""

from __future__ import annotations

import http.client
import random
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULTS = ("throttle", "error500", "reset_before", "reset_after")

_THROTTLE = b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}'
_INTERNAL = b'{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error"}'


class FaultProxy:
    def __init__(self, upstream_port: int, rate: float, seed: int = 0) -> None:
        self.rate = rate
        self.injected: Counter[str] = Counter()
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fault = proxy.draw()
                if fault == "reset_before":
                    self.close_connection = True
                    return  # nothing reached the service, nothing comes back
                if fault in ("throttle", "error500"):
                    self._reply(400 if fault == "throttle" else 500, _THROTTLE if fault == "throttle" else _INTERNAL)
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                upstream.request("POST", self.path, body=body, headers=headers)
                response = upstream.getresponse()
                payload = response.read()
                upstream.close()
                if fault == "reset_after":
                    self.close_connection = True
                    return  # applied by the service, never answered
                self._reply(response.status, payload, response.getheader("Content-Type", "application/x-amz-json-1.0"))

            def _reply(self, status: int, payload: bytes, content_type: str = "application/x-amz-json-1.0") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("x-amzn-RequestId", "fault-proxy")
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def draw(self) -> str | None:
        with self._lock:
            if self._random.random() >= self.rate:
                return None
            fault = self._random.choice(FAULTS)
            self.injected[fault] += 1
            return fault

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
