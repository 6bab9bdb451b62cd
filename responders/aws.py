"""Calling AWS from a responder: capped retries for throttling and transient errors, a clear permanent failure
for everything else (AccessDenied, NotFound, validation), so the audit says why."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, EndpointConnectionError

from responders.base import ResponderError

_TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "LimitExceededException",
        "ConcurrentModificationException",
        "WAFOptimisticLockException",
        "WAFUnavailableEntityException",
    }
)
MAX_ATTEMPTS = 5
BASE_DELAY_SECONDS = 0.2
MAX_DELAY_SECONDS = 5.0


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "Unknown"))


def call(operation: Callable[..., Any], /, sleep: Callable[[float], None] = time.sleep, **kwargs: Any) -> Any:
    """`operation(**kwargs)`, retried with capped, jittered exponential backoff while the error is transient."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return operation(**kwargs)
        except ClientError as error:
            code = error_code(error)
            if code not in _TRANSIENT_CODES or attempt == MAX_ATTEMPTS:
                raise ResponderError(
                    f"{_name(operation)}: {code}: {error.response.get('Error', {}).get('Message', '')}".rstrip(": "),
                    permanent=code not in _TRANSIENT_CODES,
                    code=code,
                ) from None
        except (EndpointConnectionError, ConnectionError) as error:
            if attempt == MAX_ATTEMPTS:
                raise ResponderError(f"{_name(operation)}: {error}", permanent=False, code="Connection") from None
        except BotoCoreError as error:  # parameter validation and the like: retrying cannot help
            raise ResponderError(f"{_name(operation)}: {error}", code=type(error).__name__) from None
        delay = min(MAX_DELAY_SECONDS, BASE_DELAY_SECONDS * 2 ** (attempt - 1))
        sleep(delay * (0.5 + random.random() / 2))  # noqa: S311 - jitter, not cryptography
    raise AssertionError("unreachable")


def _name(operation: Callable[..., Any]) -> str:
    return getattr(operation, "__name__", "call")
