"""Output encoding: the records an upload and a dead letter produce.

Uploads (SPEC §5): ``output_mode: batch`` makes one envelope per batch keyed by the batch id;
``station`` makes one envelope per station result keyed by the station id. Both envelopes carry
``batch_id``, ``module``, ``timestamp`` (the engine's time when the batch completed, seconds),
``stations_count`` and ``results``. Dead letters keep the bad record's value and key and give
the reason and origin in ``da.*`` headers.

A result is encoded once, when its run finishes (``final_result``): that is where a value that
is not JSON is found (the run then fails with reason ``bad_result``, SPEC §7), and the bytes
are spliced into the envelopes unchanged, so no result is encoded twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from da_core.batch_collector import FinalResult
from da_core.config import ModuleConfig
from da_core.engine.items import BadResult
from da_core.ports import JsonCodec
from da_core.types import OutboundRecord, Record

DETAIL_HEADER_BYTES = 1000
"""The ``da.detail`` header is cut to this many bytes."""


def final_result(station_id: str, value: Any, codec: JsonCodec) -> FinalResult:
    """``value`` as uploaded (``station_id`` injected), with its encoding. Raises ``BadResult``
    for a value the codec refuses (bytes, ``Decimal``, integers beyond 64 bits, tuple keys,
    cycles, lone surrogates, nesting too deep...). One encode per result; nothing is cached
    across calls."""
    result = FinalResult(station_id, value)
    try:
        result.encoded = codec.dumps(result)
    except Exception as exc:  # codecs raise TypeError, ValueError, OverflowError, RecursionError
        raise BadResult(f"{type(exc).__name__}: {exc}") from exc
    return result


def _encoded(result: dict[str, Any], codec: JsonCodec) -> bytes:
    if isinstance(result, FinalResult) and result.encoded:
        return result.encoded
    return codec.dumps(result)  # a result built outside ``finish_run`` (tests, tools)


def _head(head: dict[str, Any], codec: JsonCodec) -> bytes:
    """``head`` encoded without its closing brace, ready for a last key to be appended."""
    start = codec.dumps(head).rstrip()
    if not start.endswith(b"}"):  # pragma: no cover - every JsonCodec encodes a dict so
        raise ValueError("the codec did not encode the envelope as a JSON object")
    return start[:-1]


def _envelope(head: bytes, parts: Sequence[bytes]) -> bytes:
    """The envelope: ``head`` (from ``_head``) with ``"results": [parts...]`` as its last key,
    the parts spliced in as they are (each is one encoded JSON object)."""
    return b"".join((head, b',"results":[', b",".join(parts), b"]}"))


def upload_records(
    module: ModuleConfig,
    batch_id: str,
    results: Sequence[dict[str, Any]],
    codec: JsonCodec,
    now: float,
) -> tuple[OutboundRecord, ...]:
    """The records publishing ``results`` of batch ``batch_id`` per the module's output mode."""
    topic = module.output
    head: dict[str, Any] = {"batch_id": batch_id, "module": module.name, "timestamp": now}
    if module.output_mode == "station":
        head["stations_count"] = 1
        start = _head(head, codec)
        return tuple(
            OutboundRecord(
                topic=topic,
                key=str(r["station_id"]).encode(),
                value=_envelope(start, (_encoded(r, codec),)),
            )
            for r in results
        )
    head["stations_count"] = len(results)
    value = _envelope(_head(head, codec), [_encoded(r, codec) for r in results])
    return (OutboundRecord(topic=topic, key=batch_id.encode(), value=value),)


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
