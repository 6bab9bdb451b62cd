"""POST JSON to a chat webhook with the standard library, treating the URL as the secret it is.

A Slack incoming-webhook URL is a bearer credential: whoever has it can post to the channel. It never appears
in a log line, an exception or a returned state; those show the host and a short fingerprint instead.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from responders.base import ResponderError

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0
MAX_ATTEMPTS = 4
BASE_DELAY_SECONDS = 0.5
MAX_DELAY_SECONDS = 5.0
MAX_RETRY_AFTER_SECONDS = 10.0  # a server may ask for minutes; a Lambda cannot wait that long
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


@dataclass(frozen=True)
class Delivery:
    status: int
    attempts: int


def fingerprint(url: str) -> dict[str, str]:
    """What may be shown of a webhook URL: its host, and a hash that tells two URLs apart without leaking one."""
    return {"host": urlsplit(url).hostname or "", "url_sha256": hashlib.sha256(url.encode()).hexdigest()[:16]}


def is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, where: str) -> str:
    """`url` if it is https (or http to this machine, for local tests); otherwise a ResponderError that names
    `where` the URL came from but not the URL."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
    except ValueError:
        raise ResponderError(f"webhook URL from {where} is not a URL") from None
    if not host:
        raise ResponderError(f"webhook URL from {where} has no host")
    if any(not ch.isprintable() or ch.isspace() for ch in url.strip()):
        raise ResponderError(f"webhook URL from {where} contains a space or control character")
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback(host)):
        return url.strip()
    raise ResponderError(f"webhook URL from {where} must be https (http only to a loopback host), not {parts.scheme!r}")


def redact(text: str, url: str) -> str:
    """`text` without the URL or the secret part of it (its path and query), whatever quoted it."""
    parts = urlsplit(url)
    # As written, and as repr() escapes it (http.client quotes a URL with a control character that way); and each
    # long path segment alone (a token), whatever cut the URL into pieces.
    pieces = {url, parts.path, parts.query, *(p for p in parts.path.split("/") if len(p) >= 8)}
    for secret in sorted(pieces | {repr(p)[1:-1] for p in pieces}, key=len, reverse=True):
        if len(secret) > 1:
            text = text.replace(secret, "<redacted>")
    return text


def retry_delay(attempt: int, retry_after: str | None) -> float:
    """Seconds to wait before attempt `attempt + 1`: the server's Retry-After when it gives one (capped),
    else capped, jittered exponential backoff."""
    if retry_after:
        try:
            seconds = float(retry_after)
        except ValueError:
            try:
                seconds = parsedate_to_datetime(retry_after).timestamp() - time.time()
            except (TypeError, ValueError):
                seconds = BASE_DELAY_SECONDS
        return min(MAX_RETRY_AFTER_SECONDS, max(0.0, seconds))
    delay = min(MAX_DELAY_SECONDS, BASE_DELAY_SECONDS * 2.0 ** (attempt - 1))
    return delay * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not cryptography


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A webhook does not redirect; following one would send the incident somewhere nobody configured.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _opener(host: str) -> urllib.request.OpenerDirector:
    handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
    if is_loopback(host):
        handlers.append(urllib.request.ProxyHandler({}))  # a proxy cannot reach this machine's loopback
    return urllib.request.build_opener(*handlers)


def post_json(
    url: str, payload: Mapping[str, Any], *, name: str, sleep: Callable[[float], None] | None = None
) -> Delivery:
    """POST `payload`; retry 429 and 5xx (honouring Retry-After) and connection errors; raise a permanent
    ResponderError on any other 4xx or 3xx. Every message is redacted of the URL."""
    sleep = sleep or time.sleep
    host = urlsplit(url).hostname or ""
    body = json.dumps(payload).encode()
    opener = _opener(host)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked by check_url
            url, data=body, method="POST", headers={"Content-Type": "application/json; charset=utf-8"}
        )
        retry_after: str | None = None
        try:
            with opener.open(request, timeout=TIMEOUT_SECONDS) as response:
                return Delivery(status=response.status, attempts=attempt)
        except urllib.error.HTTPError as error:
            status, retry_after = error.code, error.headers.get("Retry-After")
            detail = redact(error.read(300).decode("utf-8", "replace").strip(), url)
            error.close()
            reason = f"{name}: webhook at {host} returned HTTP {status}" + (f": {detail}" if detail else "")
            code, transient = f"HTTP{status}", status == 429 or status >= 500
        except OSError as error:  # URLError, timeouts, resets: the reason, never the URL
            reason = f"{name}: webhook at {host} unreachable: " + redact(str(getattr(error, "reason", error)), url)
            code, transient = "Connection", True
        except Exception as error:  # http.client's InvalidURL and the like quote the URL: only the type is told
            reason = f"{name}: webhook request to {host} refused before sending ({type(error).__name__})"
            code, transient = type(error).__name__, False
        # Raised out here, not in the except blocks, so no error carries the HTTPError (and its URL) as context.
        if not transient:
            raise ResponderError(reason, permanent=True, code=code)
        if attempt == MAX_ATTEMPTS:
            raise ResponderError(f"{reason} (after {attempt} attempts)", permanent=False, code=code)
        delay = retry_delay(attempt, retry_after)
        log.warning("%s; retrying in %.1fs (attempt %d of %d)", reason, delay, attempt, MAX_ATTEMPTS)
        sleep(delay)
    raise AssertionError("unreachable")
