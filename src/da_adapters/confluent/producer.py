"""``ConfluentProducer``: the sync ``Producer`` port on ``confluent_kafka.Producer``.

``produce`` queues the record in librdkafka and returns; its ``on_delivery`` gets exactly one
``DeliveryReport`` from a later ``poll``/``flush`` (librdkafka calls the delivery callback of
every queued message exactly once, on the thread that serves it). A full local queue
(``BufferError``) is waited out for up to ``queue_full_timeout`` seconds while serving
reports, then ``DeliveryError`` is raised (no report follows); so is any other refusal to
queue. ``close`` flushes for up to ``close_timeout`` seconds, then purges what is left so that
every record still gets its (failed) report.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import confluent_kafka as ck

from da_adapters.confluent._support import (
    LibrdkafkaLogBridge,
    Throttle,
    bootstrap_string,
    check_bootstrap,
    describe_config,
    error_callback,
    log_notes,
    new_client,
    source_or_empty,
)
from da_adapters.confluent.translate import error_text
from da_adapters.kafka_config import KafkaConfigSource, to_librdkafka_producer
from da_core.errors import DeliveryError
from da_core.types import DeliveryReport, OutboundRecord

log = logging.getLogger("da_adapters.confluent")

DeliveryCallback = Callable[[DeliveryReport], None]


def delivery_report(
    record: OutboundRecord, error: ck.KafkaError | None, message: ck.Message | None
) -> DeliveryReport:
    """The report of one record from librdkafka's delivery callback arguments."""
    if error is not None:
        return DeliveryReport(record=record, error=error_text(error))
    partition = message.partition() if message is not None else None
    offset = message.offset() if message is not None else None
    return DeliveryReport(
        record=record,
        error=None,
        partition=partition if partition is not None and partition >= 0 else None,
        offset=offset if offset is not None and offset >= 0 else None,
    )


class ConfluentProducer:
    """The sync ``Producer`` port on confluent-kafka. See the module docstring.

    ``settings`` (shaped like ``da_app.settings.KafkaSettings``) is translated by
    ``to_librdkafka_producer`` (``acks``, murmur2 partitioner…); ``bootstrap_servers`` and
    ``extra`` (librdkafka properties) override it."""

    def __init__(
        self,
        settings: KafkaConfigSource | None = None,
        *,
        bootstrap_servers: str | Sequence[str] | None = None,
        extra: Mapping[str, Any] | None = None,
        queue_full_timeout: float = 5.0,
        close_timeout: float = 30.0,
    ) -> None:
        translated = to_librdkafka_producer(source_or_empty(settings))
        log_notes(translated, "producer")
        config: dict[str, Any] = dict(translated.config)
        if bootstrap_servers is not None:
            config["bootstrap.servers"] = bootstrap_string(bootstrap_servers)
        config.update(extra or {})
        check_bootstrap(config, "producer")
        self._throttle = Throttle()
        self._fatal: ck.KafkaError | None = None
        config.setdefault("error_cb", error_callback("producer", self._throttle, self._set_fatal))
        config.setdefault("logger", LibrdkafkaLogBridge())
        log.debug("producer: librdkafka configuration %s", describe_config(config))
        self._producer = new_client(ck.Producer, config, "producer")
        self._queue_full_timeout = queue_full_timeout
        self._close_timeout = close_timeout
        self._served = threading.local()
        self._closed = False

    def produce(self, record: OutboundRecord, on_delivery: DeliveryCallback) -> None:
        if self._closed:
            raise DeliveryError("producer is closed")
        if self._fatal is not None:
            raise DeliveryError(f"producer failed: {error_text(self._fatal)}")

        def on_report(error: ck.KafkaError | None, message: ck.Message) -> None:
            self._served.count = getattr(self._served, "count", 0) + 1
            on_delivery(delivery_report(record, error, message))

        kwargs: dict[str, Any] = {
            "value": record.value,
            "key": record.key,
            "on_delivery": on_report,
        }
        if record.headers:
            kwargs["headers"] = list(record.headers)
        if record.partition is not None:
            kwargs["partition"] = record.partition
        if record.timestamp is not None:
            kwargs["timestamp"] = int(record.timestamp * 1000)
        deadline: float | None = None
        while True:
            try:
                self._producer.produce(record.topic, **kwargs)
                return
            except BufferError as exc:
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self._queue_full_timeout
                elif now >= deadline:
                    raise DeliveryError(
                        f"local queue full for {self._queue_full_timeout}s "
                        f"(record to {record.topic}): {exc}"
                    ) from exc
                self._producer.poll(min(0.05, max(0.0, deadline - now)))
            except ck.KafkaException as exc:
                raise DeliveryError(f"cannot queue a record to {record.topic}: {exc}") from exc

    def poll(self, timeout: float = 0.0) -> int:
        """Serve the ready reports (waiting up to ``timeout`` for one); returns how many."""
        before = getattr(self._served, "count", 0)
        self._producer.poll(max(timeout, 0.0))
        return int(getattr(self._served, "count", 0) - before)

    def flush(self, timeout: float) -> int:
        return int(self._producer.flush(max(timeout, 0.0)))

    def pending(self) -> int:
        """Records queued or in flight whose report has not been served yet."""
        return len(self._producer)

    def close(self, timeout: float | None = None) -> None:
        """Flush (up to ``timeout``, else ``close_timeout``); purge what is still queued so
        that its records get failed reports; refuse further records. Closing twice is
        harmless."""
        if self._closed:
            return
        self._closed = True
        seconds = self._close_timeout if timeout is None else max(timeout, 0.0)
        left = self._producer.flush(seconds)
        if left:
            log.warning("producer: %d records not delivered after %ss; purging them", left, seconds)
            self._producer.purge(in_queue=True, in_flight=True, blocking=True)
            self._producer.flush(1.0)

    def _set_fatal(self, error: ck.KafkaError) -> None:
        self._fatal = error
