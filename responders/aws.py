"""Calling AWS from a responder: botocore retries, this module says what a failure means.

Throttling, 5xx and connection errors are retried by botocore itself, in its standard mode with capped, jittered
backoff (`CLIENT_CONFIG`, used by every client a responder or the executor makes): no retry loop is stacked on top
of it. What reaches `call` has failed past those retries, and becomes a `ResponderError` that says why and whether
it is transient (throttled, unavailable, a concurrent writer: worth trying again later, with `cordon retry`) or
permanent (AccessDenied, NotFound, validation: trying again changes nothing until someone fixes the cause).

What botocore cannot do stays with the responders: read back after a failure (`Responder.holds`), and re-read a
resource written by someone else meanwhile (WAF lock tokens, bucket policies).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, EndpointConnectionError, ReadTimeoutError

from responders.base import ResponderError

MAX_ATTEMPTS = 5  # the first included: up to four retries, each backing off up to 20 s
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
    connect_timeout=5,
    read_timeout=30,
)

# Failed past botocore's retries, and yet worth trying again later: nothing in the request was wrong.
TRANSIENT_CODES = frozenset(
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


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "Unknown"))


def call(operation: Callable[..., Any], /, **kwargs: Any) -> Any:
    """`operation(**kwargs)`, once (botocore has retried it already); a failure as a `ResponderError`."""
    try:
        return operation(**kwargs)
    except ClientError as error:
        code = error_code(error)
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        message = str(error.response.get("Error", {}).get("Message", ""))
        raise ResponderError(
            f"{_name(operation)}: {code}: {message}".rstrip(": "),
            permanent=code not in TRANSIENT_CODES and status < 500,
            code=code,
        ) from None
    except (EndpointConnectionError, ConnectionError, ReadTimeoutError) as error:
        raise ResponderError(f"{_name(operation)}: {error}", permanent=False, code="Connection") from None
    except BotoCoreError as error:  # parameter validation and the like: trying again cannot help
        raise ResponderError(f"{_name(operation)}: {error}", code=type(error).__name__) from None


def _name(operation: Callable[..., Any]) -> str:
    return getattr(operation, "__name__", "call")
