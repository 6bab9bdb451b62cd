"""Opening the correlation state store from a URL, AWS included (the shell's side: it may import boto3).

- `memory://`, `sqlite:///path/to/state.db`: the core's stores (`correlators.state.open_store`).
- `dynamodb://TABLE?region=REGION`: the deployed table (`DynamoDBStore`), through a client that leaves throttling
  and 5xx to botocore's standard retry mode. `endpoint_url` points it elsewhere (a moto server, DynamoDB Local).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import boto3  # noqa: TID251 - the shell builds the client the DynamoDB adapter is handed
from botocore.config import Config

from correlators.errors import StateError
from correlators.state import StateStore, open_store
from correlators.state.dynamodb import DynamoDBStore

DYNAMODB_SCHEME = "dynamodb://"
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 10})


def parse_dynamodb_url(url: str) -> tuple[str, str | None]:
    """(table, region) of `dynamodb://TABLE?region=REGION`; the region may be left to the environment."""
    parts = urlsplit(url)
    if parts.scheme != "dynamodb" or not parts.netloc or parts.path not in ("", "/"):
        raise StateError(f"bad DynamoDB state URL {url!r}: write dynamodb://TABLE?region=REGION")
    query = parse_qs(parts.query)
    unknown = sorted(set(query) - {"region"})
    if unknown:
        raise StateError(f"bad DynamoDB state URL {url!r}: unknown parameter {unknown[0]!r}, valid: region")
    regions = query.get("region", [])
    return parts.netloc, regions[-1] if regions else None


def open_dynamodb_store(url: str, endpoint_url: str | None = None) -> DynamoDBStore:
    table, region = parse_dynamodb_url(url)
    client = boto3.client("dynamodb", region_name=region, endpoint_url=endpoint_url, config=CLIENT_CONFIG)
    return DynamoDBStore(client, table)


def open_state(url: str, endpoint_url: str | None = None) -> StateStore:
    """The state store a URL names: memory://, sqlite:///path, or dynamodb://TABLE?region=REGION."""
    if url.startswith(DYNAMODB_SCHEME):
        return open_dynamodb_store(url, endpoint_url)
    if url in ("memory", "memory://") or url.startswith("sqlite://"):
        return open_store(url)
    raise StateError(
        f"unknown state store {url!r}: use memory://, sqlite:///path/to/state.db or dynamodb://TABLE?region=REGION"
    )
