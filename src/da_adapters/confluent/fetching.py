"""``FetchMixin``: ``poll`` of ``ConfluentConsumer``, merging its two handles.

Both handles in use (``assign``, see ``side_reads``)
    ``poll`` merges the group handle and the handle of ``assign``: it alternates which is asked
    first and waits on them in short slices, so neither starves the other and the group handle
    keeps serving its callbacks.

Errors in ``poll``
    ``_PARTITION_EOF`` is ignored; an offset out of range is logged (group and partition) and
    left to ``auto.offset.reset``; other per-message errors are logged (throttled); a fatal
    client error raises ``ConfluentError``.
"""

from __future__ import annotations

import time

import confluent_kafka as ck

from da_adapters.confluent._support import ConfluentError
from da_adapters.confluent.consumer_base import ConsumerBase, log
from da_adapters.confluent.translate import error_text, message_to_record
from da_core.types import Record

#: How long ``poll`` waits on one handle before looking at the other (both in use).
MERGE_SLICE = 0.05

_IGNORED = frozenset({ck.KafkaError._PARTITION_EOF})
_OUT_OF_RANGE = frozenset({ck.KafkaError.OFFSET_OUT_OF_RANGE, ck.KafkaError._AUTO_OFFSET_RESET})


class FetchMixin(ConsumerBase):
    """``poll`` and its error handling (see the module docstring)."""

    def poll(self, timeout: float, max_records: int = 500) -> list[Record]:
        self._check_open()
        if max_records < 1:
            raise ValueError(f"max_records must be at least 1, not {max_records}")
        self._raise_fatal()
        timeout = max(timeout, 0.0)
        manual = self._manual
        if manual is None:
            return self._consume(self._consumer, max_records, timeout)
        if not self._subscribed:
            return self._consume(manual, max_records, timeout)
        self._turn ^= 1
        first, second = (self._consumer, manual) if self._turn else (manual, self._consumer)
        deadline = time.monotonic() + timeout
        while True:
            records = self._consume(first, max_records, 0.0)
            if len(records) < max_records:
                wait = 0.0 if records else min(MERGE_SLICE, max(0.0, deadline - time.monotonic()))
                records += self._consume(second, max_records - len(records), wait)
            if records or time.monotonic() >= deadline:
                return records

    def _consume(self, consumer: ck.Consumer, max_records: int, timeout: float) -> list[Record]:
        # consume(n, timeout) waits for n messages or the whole timeout: at a moderate rate it
        # would sit on the first message for the full timeout. Wait for the first one only,
        # then take what is already queued without waiting.
        try:
            first = consumer.poll(timeout) if timeout > 0 else None
            if first is None:
                messages = consumer.consume(num_messages=max_records, timeout=0)
            elif max_records > 1:
                messages = [first, *consumer.consume(num_messages=max_records - 1, timeout=0)]
            else:
                messages = [first]
        except ck.KafkaException as exc:
            raise ConfluentError(f"group {self.group_id}: consume failed: {exc}") from exc
        self._raise_fatal()
        records: list[Record] = []
        for message in messages:
            error = message.error()
            if error is None:
                records.append(message_to_record(message))
            else:
                self._message_error(message, error)
        return records

    def _message_error(self, message: ck.Message, error: ck.KafkaError) -> None:
        code = error.code()
        if code in _IGNORED:
            return
        where = f"{message.topic()}[{message.partition()}]" if message.topic() is not None else "-"
        if code in _OUT_OF_RANGE:
            log.warning(
                "group %s: offset of %s is out of range (%s); reset per auto.offset.reset=%s",
                self.group_id,
                where,
                error.str(),
                self.auto_offset_reset,
            )
            return
        if error.fatal():
            raise ConfluentError(f"group {self.group_id}: {where}: fatal {error_text(error)}")
        if self._throttle.allow(f"message:{code}:{where}"):
            log.error("group %s: %s: %s", self.group_id, where, error_text(error))

    def _raise_fatal(self) -> None:
        if self._fatal is not None:
            raise ConfluentError(
                f"consumer of group {self.group_id}: fatal {error_text(self._fatal)}"
            )
