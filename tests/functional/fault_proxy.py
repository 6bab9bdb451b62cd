"""A loopback HTTP proxy in front of a moto server that misbehaves as AWS does on a bad day: throttling, 500s,
connections reset before the request reaches the service, and connections reset after it did (the write is
applied, the client never hears so). Faults are drawn from a seeded generator, so a run can be repeated, or
decided per request by a script (`decide(body)`: which request is throttled). Errors are answered in the
request's protocol: JSON for DynamoDB and the like, XML for the query protocol (IAM, STS, EC2)."""

from __future__ import annotations

import http.client
import random
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULTS = ("throttle", "error500", "reset_before", "reset_after")

_THROTTLE = b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}'
_INTERNAL = b'{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error"}'
_XML_ERROR = (
    "<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
    "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
)
_THROTTLE_XML = _XML_ERROR.format(kind="Sender", code="Throttling", message="Rate exceeded").encode()
_INTERNAL_XML = _XML_ERROR.format(kind="Receiver", code="InternalFailure", message="Internal failure").encode()


class FaultProxy:
    def __init__(
        self,
        upstream_port: int,
        rate: float = 0.0,
        seed: int = 0,
        decide: Callable[[bytes], str | None] | None = None,
    ) -> None:
        self.rate = rate
        self._decide = decide
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
                fault = proxy.draw(body)
                if fault == "reset_before":
                    self.close_connection = True
                    return  # nothing reached the service, nothing comes back
                if fault in ("throttle", "error500"):
                    status = 400 if fault == "throttle" else 500
                    if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
                        self._reply(status, _THROTTLE_XML if status == 400 else _INTERNAL_XML, "text/xml")
                    else:
                        self._reply(status, _THROTTLE if status == 400 else _INTERNAL)
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

    def draw(self, body: bytes = b"") -> str | None:
        with self._lock:
            if self._decide is not None:
                fault = self._decide(body)
                if fault:
                    self.injected[fault] += 1
                return fault
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
