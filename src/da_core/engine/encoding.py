"""Output encoding: the records an upload and a dead letter produce.

Uploads (SPEC §5): ``output_mode: batch`` makes one envelope per batch keyed by the batch id;
``station`` makes one envelope per station result keyed by the station id. Both envelopes carry
``batch_id``, ``module``, ``timestamp`` (the engine's time when the batch completed, seconds),
``stations_count`` and ``results``. Dead letters keep the bad record's value and key and give
the reason and origin in ``da.*`` headers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from da_core.config import ModuleConfig
from da_core.ports import JsonCodec
from da_core.types import OutboundRecord, Record

DETAIL_HEADER_BYTES = 1000
"""The ``da.detail`` header is cut to this many bytes."""


def upload_records(
    module: ModuleConfig,
    batch_id: str,
    results: Sequence[dict[str, Any]],
    codec: JsonCodec,
    now: float,
) -> tuple[OutboundRecord, ...]:
    """The records publishing ``results`` of batch ``batch_id`` per the module's output mode."""
    topic = module.output
    if module.output_mode == "station":
        return tuple(
            OutboundRecord(
                topic=topic,
                key=str(r["station_id"]).encode(),
                value=codec.dumps(
                    {
                        "batch_id": batch_id,
                        "module": module.name,
                        "timestamp": now,
                        "stations_count": 1,
                        "results": [r],
                    }
                ),
            )
            for r in results
        )
    envelope = {
        "batch_id": batch_id,
        "module": module.name,
        "timestamp": now,
        "stations_count": len(results),
        "results": results,
    }
    return (OutboundRecord(topic=topic, key=batch_id.encode(), value=codec.dumps(envelope)),)


def dead_letter_record(
    rec: Record, reason: str, detail: str, module: str, topic: str
) -> OutboundRecord:
    """The record for ``topic`` (the dead-letter topic) carrying bad record ``rec``."""
    headers = (
        ("da.reason", reason.encode()),
        ("da.detail", detail.encode("utf-8", "replace")[:DETAIL_HEADER_BYTES]),
        ("da.topic", rec.topic.encode()),
        ("da.partition", str(rec.partition).encode()),
        ("da.offset", str(rec.offset).encode()),
        ("da.module", module.encode()),
        ("da.timestamp", repr(rec.timestamp).encode()),
    )
    return OutboundRecord(
        topic=topic,
        value=rec.value if rec.value is not None else b"",
        key=rec.key,
        headers=headers + rec.headers,
    )
