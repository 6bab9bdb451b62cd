"""Opening the correlation state store from a URL, AWS included (the shell's side: it may import boto3).

- `memory://`, `sqlite:///path/to/state.db`: the core's stores (`correlators.state.open_store`).
- `dynamodb://TABLE?region=REGION`: the deployed table (`DynamoDBStore`), through a client that leaves throttling
  and 5xx to botocore's standard retry mode. `endpoint_url` points it elsewhere (a moto server, DynamoDB Local).
  The URL the CLI's `--state` takes for both of the stack's tables, `dynamodb://?audit=AUDIT&state=STATE&region=R`
  (`cordon/respond.py`), names the state table as `state=` and is read the same way.
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
    """(table, region) of `dynamodb://TABLE?region=REGION` or `dynamodb://?state=TABLE&region=REGION` (`audit=`
    names the audit table, not read here); the region may be left to the environment."""
    usage = "write dynamodb://TABLE?region=REGION or dynamodb://?audit=AUDIT_TABLE&state=STATE_TABLE&region=REGION"
    parts = urlsplit(url)
    if parts.scheme != "dynamodb" or parts.path not in ("", "/"):
        raise StateError(f"bad DynamoDB state URL {url!r}: {usage}")
    query = parse_qs(parts.query)
    unknown = sorted(set(query) - {"region", "state", "audit"})
    if unknown:
        raise StateError(
            f"bad DynamoDB state URL {url!r}: unknown parameter {unknown[0]!r}, valid: audit, region, state"
        )
    tables = {table for table in [parts.netloc, *query.get("state", [])] if table}
    if len(tables) != 1:
        problem = (
            "it names no state table" if not tables else f"it names two state tables ({', '.join(sorted(tables))})"
        )
        raise StateError(f"bad DynamoDB state URL {url!r}: {problem}; {usage}")
    regions = query.get("region", [])
    return tables.pop(), regions[-1] if regions else None


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
