"""The deployed side of reports: the page written to Cordon's report bucket, and a presigned link of short life
that alerts carry (`incident["report"]`), so a responder opens the incident from Slack or a mail without AWS
credentials of their own, for as long as the link lives.

A presigned URL carries the signer's rights: it works only while the runner's role may read the object, and, signed
with the function's temporary credentials, no longer than those credentials last, whatever `seconds` says.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

DEFAULT_LINK_SECONDS = 3600
PREFIX = "reports/"
_INCIDENT_ID = re.compile(r"^inc-[0-9a-f]{16}$")


def report_key(incident_id: str) -> str:
    """One object per incident, rewritten as it changes: a link handed out earlier opens the latest page."""
    if not _INCIDENT_ID.match(incident_id):
        raise ValueError(f"not an incident id: {incident_id!r}")
    return f"{PREFIX}{incident_id}.html"


def put_request(bucket: str, incident_id: str, page: str) -> dict[str, Any]:
    """The PutObject request: the bucket's default encryption (the stack's KMS key) applies; never cached."""
    return {
        "Bucket": bucket,
        "Key": report_key(incident_id),
        "Body": page.encode("utf-8"),
        "ContentType": "text/html; charset=utf-8",
        "CacheControl": "no-store",
    }


def publish(
    s3: Any, bucket: str, incident_id: str, page: str, seconds: int, now: datetime | None = None
) -> dict[str, str]:
    """Write the page; the link to it and when the link expires (ISO 8601), as alerts show them."""
    request = put_request(bucket, incident_id, page)
    s3.put_object(**request)
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": request["Key"]}, ExpiresIn=seconds, HttpMethod="GET"
    )
    expires = (now or datetime.now(UTC)) + timedelta(seconds=seconds)
    return {"url": str(url), "expires_at": expires.isoformat(timespec="seconds")}
