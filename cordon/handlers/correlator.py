"""Correlator Lambda: SQS batch of security events > the core > DynamoDB state > `Cordon Incident` on Cordon's bus.

A record that fails (throttled past botocore's retries, a conflict storm) is reported by message id and
redelivered; the rest of the batch commits. A record that is bad input is rejected and counted, never retried.
Processing a record twice is harmless (correlators/pipeline.py), so SQS's at-least-once delivery and parallel
invocations give the incidents of one sorted pass.
"""

from __future__ import annotations

import io
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from cordon import constants
from cordon.handlers import runtime
from cordon.handlers.incident_events import publish_changed
from correlators.errors import StateError
from correlators.ingest import RawRecord, read_stream

if TYPE_CHECKING:
    from correlators.pipeline import Pipeline, Stats

logger = Logger(service="cordon-correlator")
metrics = Metrics(namespace="Cordon", service="correlator")
processor = BatchProcessor(event_type=EventType.SQS)


@cache
def pipeline() -> Pipeline:
    """Built once per container, on the first invocation (imported here, so the module's import stays close to
    boto3's own: `make bench`, cold start): rules, configuration and the store client."""
    from cordon.replay import load_ruleset
    from correlators.pipeline import Pipeline
    from correlators.state.dynamodb import DynamoDBStore

    config = runtime.site_config()
    store = DynamoDBStore(runtime.client("dynamodb"), runtime.Tables.from_env().state)
    return Pipeline(config, load_ruleset(config), store)


def record_handler(record: SQSRecord) -> None:
    core = pipeline()
    logger.set_correlation_id(record.message_id)
    for item in read_stream(io.BytesIO(record.body.encode("utf-8", "surrogatepass")), f"sqs:{record.message_id}"):
        if isinstance(item, RawRecord):
            # The EventBridge event id follows the event through the logs of every stage; the message id if none.
            event_id = item.payload.get("id")
            logger.set_correlation_id(event_id if isinstance(event_id, str) else record.message_id)
        rejection = core.take(item)
        if rejection is not None:
            logger.warning("event rejected", extra={"where": rejection.where, "reason": rejection.reason})


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from correlators.pipeline import Stats

    core = pipeline()
    core.stats = Stats()
    core.incidents.changed.clear()
    created_before = core.incidents.created
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    _share_state(core)
    changed = publish_changed(core.store, core.incidents.changed, runtime.env(constants.EVENT_BUS_ENV))
    _count(core.stats, created=core.incidents.created - created_before, changed=changed)
    return dict(response)


def _share_state(core: Pipeline) -> None:
    """Every invocation, not only every 500 events: a container may take fewer in its whole life, and the
    containers on one table must agree on the horizon beyond which an event is refused (its seen mark may be gone).
    Then the signals the invocation stored are added to the table's counter. One UpdateItem each. Failing either
    loses nothing: the events are processed, the next invocation raises the watermark again and counts what this
    one could not, so the batch is not failed for it."""
    for step, failure in ((core.share_watermark, "watermark not shared"), (core.store.sync, "signals not counted")):
        try:
            step()
        except (BotoCoreError, ClientError, StateError) as error:  # throttled, unreachable, or a conflict storm
            logger.warning(failure, extra={"error": type(error).__name__})


def _count(stats: Stats, *, created: int, changed: int) -> None:
    for name, value in (
        ("Events", stats.accepted),
        ("Rejected", stats.rejected),
        ("Duplicates", stats.duplicates),
        ("Late", stats.late),
        ("Signals", stats.signals),
        ("IncidentsCreated", created),
        ("IncidentsUpdated", max(changed - created, 0)),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def reset() -> None:
    """A new container (tests)."""
    pipeline.cache_clear()
    runtime.reset()
