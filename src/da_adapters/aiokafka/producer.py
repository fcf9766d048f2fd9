"""``AiokafkaProducer``: the ``AsyncProducer`` port on ``aiokafka.AIOKafkaProducer``.

``send`` queues the record and awaits the broker's answer (``send_and_wait`` semantics); a
``KafkaError`` (refused by the broker, timed out, too large) becomes a report with the error,
never an exception. A topic name Kafka cannot accept is reported at once: aiokafka would wait
``request_timeout_ms`` for its metadata (40 s by default) before failing, where librdkafka
answers ``TOPIC_EXCEPTION`` immediately. The client is built in ``start()`` (aiokafka binds
to the running loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from da_adapters.aiokafka._support import (
    AIOKAFKA_LOGGERS,
    client_kwargs,
    describe_kwargs,
    log_notes,
    source_or_empty,
    stop_producer,
)
from da_adapters.aiokafka.translate import error_report, metadata_to_report
from da_adapters.kafka_config import KafkaConfigSource, to_aiokafka_producer
from da_adapters.log_throttle import rate_limit_loggers
from da_core.errors import ConfigError, DeliveryError
from da_core.types import DeliveryReport, OutboundRecord

log = logging.getLogger("da_adapters.aiokafka")

_LEGAL_TOPIC = re.compile(r"[a-zA-Z0-9._-]{1,249}")


def topic_name_problem(topic: str) -> str | None:
    """Why Kafka would refuse this topic name, or None when it is legal."""
    if topic in (".", "..") or not _LEGAL_TOPIC.fullmatch(topic):
        return (
            f"topic name {topic!r} is not legal in Kafka (1 to 249 of a-z A-Z 0-9 . _ -, "
            "not '.' or '..')"
        )
    return None


CLOSE_TIMEOUT = 10.0
"""Seconds ``close`` waits for in-flight records when given no timeout."""


class AiokafkaProducer:
    """The ``AsyncProducer`` port on aiokafka. See the module docstring.

    ``settings`` (shaped like ``da_app.settings.KafkaSettings``) is translated by
    ``to_aiokafka_producer``; ``bootstrap_servers`` and ``extra`` (constructor arguments)
    override it. ``acks`` defaults to ``'all'``."""

    def __init__(
        self,
        settings: KafkaConfigSource | None = None,
        *,
        bootstrap_servers: str | Sequence[str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        translated = to_aiokafka_producer(source_or_empty(settings))
        log_notes(translated, "producer")
        kwargs = client_kwargs(
            translated, "producer", bootstrap_servers=bootstrap_servers, extra=extra
        )
        kwargs.setdefault("acks", "all")
        self._kwargs = kwargs
        rate_limit_loggers(AIOKAFKA_LOGGERS)
        self._producer: Any = None
        self._closed = False
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Records handed to the client whose answer has not come yet."""
        return self._waiting

    def _answered(self, answer: asyncio.Future[Any]) -> None:
        # Read even when the send was cancelled before it awaited the answer (a stop): asyncio
        # would otherwise log "Future exception was never retrieved".
        self._waiting -= 1
        if not answer.cancelled():
            answer.exception()

    async def start(self) -> None:
        """Connect (bootstrap metadata). Starting twice is harmless."""
        if self._closed:
            raise RuntimeError("producer is closed")
        if self._producer is not None:
            return
        log.debug("producer: aiokafka arguments %s", describe_kwargs(self._kwargs))
        try:
            producer = AIOKafkaProducer(**self._kwargs)
        except TypeError as exc:
            raise ConfigError(f"producer: aiokafka does not accept these settings: {exc}") from exc
        try:
            await producer.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await producer.stop()
            raise
        self._producer = producer

    async def send(self, record: OutboundRecord) -> DeliveryReport:
        return (await self.send_many([record]))[0]

    async def send_many(self, records: Sequence[OutboundRecord]) -> list[DeliveryReport]:
        """Enqueue every record (aiokafka's ``send`` returns once the record is in its
        accumulator), then await the answers: no task per record."""
        if self._closed:
            raise DeliveryError("producer is closed")
        producer = self._producer
        if producer is None:
            raise RuntimeError("AiokafkaProducer.start() must be awaited before send")
        # per record: its report already (refused before sending), or the future of its answer
        slots: list[DeliveryReport | Any] = []
        for record in records:
            problem = topic_name_problem(record.topic)
            if problem is not None:
                slots.append(DeliveryReport(record=record, error=f"InvalidTopicError: {problem}"))
                continue
            try:
                answer = await producer.send(
                    record.topic,
                    value=record.value,
                    key=record.key,
                    partition=record.partition,
                    headers=list(record.headers) or None,
                    timestamp_ms=None if record.timestamp is None else int(record.timestamp * 1000),
                )
            except KafkaError as exc:
                slots.append(error_report(record, exc))
                continue
            self._waiting += 1
            answer.add_done_callback(self._answered)
            slots.append(answer)
        reports: list[DeliveryReport] = []
        for record, slot in zip(records, slots, strict=True):
            if isinstance(slot, DeliveryReport):
                reports.append(slot)
                continue
            try:
                reports.append(metadata_to_report(record, await slot))
            except KafkaError as exc:
                reports.append(error_report(record, exc))
        return reports

    async def flush(self, timeout: float) -> None:
        """Wait (up to ``timeout`` seconds) until every batch sent so far has its answer."""
        if self._producer is None or self._closed:
            return
        try:
            await asyncio.wait_for(self._producer.flush(), max(timeout, 0.0))
        except asyncio.TimeoutError:
            log.warning("producer: flush did not finish within %ss", timeout)

    async def close(self, timeout: float | None = None) -> None:
        """Deliver what is in flight (for at most ``timeout`` seconds, else ``CLOSE_TIMEOUT``),
        then disconnect; what is still undelivered gets failed reports (``stop_producer``).
        Closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        if self._producer is not None:
            await stop_producer(self._producer, CLOSE_TIMEOUT if timeout is None else timeout)
