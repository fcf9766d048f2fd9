"""The outbox: everything the engine wants produced (uploads, dead letters, forwarded shares),
with one backoff policy type for retrying what the broker refused; completed batches become
uploads here (their records encoded by ``encoding``).

Each kind is a ``Lane``. Every entry of a lane is in exactly one of three places: new (FIFO,
handed out in order), waiting for its retry (a heap by due time), or handed out (awaiting the
runner's answer). An acknowledged entry releases the record references it holds; a refused one
is retried after ``Backoff.delay(attempt)`` and its records stay uncommitted meanwhile.
Uploads and shares are never dropped: at-least-once (SPEC §6) outranks a broker that refuses
for long.

Dead letters are the one bounded lane (SPEC §7: "retried with backoff and a bound"): after
``dead_letter_max_attempts`` failed attempts (a bad record larger than the producer's
``message.max.bytes``, a dead-letter topic the broker refuses) the dead letter is given up and
its record *released*, so the partition's commits advance past it instead of stalling every
good record behind it for ever. It is counted (``EngineStats.dead_letters_lost``) and logged
at ERROR with the record's topic, partition, offset and reason, so an operator can still read
it from the source topic. While a dead letter is failing (``dead_letters_failing`` > 0) the
service reports itself degraded.
"""

from __future__ import annotations

import heapq
import logging
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, Protocol, TypeVar

import attrs

from da_core.batch_collector import CompletedBatch
from da_core.config import ModuleConfig
from da_core.engine.encoding import upload_records
from da_core.engine.items import DeadLetter, EngineStats, Forward, RecordRef, Upload, release
from da_core.offset_ledger import OffsetLedger
from da_core.ports import JsonCodec

log = logging.getLogger("da_core.engine")

UPLOAD_BACKOFF_MAX = 30.0
FORWARD_BACKOFF_MAX = 5.0
DEAD_LETTER_BACKOFF_MAX = 30.0
DEAD_LETTER_MAX_ATTEMPTS = 10
"""Failed attempts after which a dead letter is given up (about 80 s of backoff)."""


@attrs.frozen
class Backoff:
    """Exponential backoff with a cap: the ``attempt``-th retry (1 after the first failure)
    waits ``min(cap, base * 2 ** min(attempt, max_doublings))`` seconds."""

    base: float
    cap: float
    max_doublings: int = 10

    def delay(self, attempt: int) -> float:
        return min(self.cap, self.base * 2.0 ** min(attempt, self.max_doublings))


UPLOAD_BACKOFF = Backoff(base=0.1, cap=UPLOAD_BACKOFF_MAX)
"""Results to the output topic: 0.2 s, 0.4 s, … up to 30 s."""
DEAD_LETTER_BACKOFF = Backoff(base=0.1, cap=DEAD_LETTER_BACKOFF_MAX)
"""Bad records to the dead-letter topic: as uploads (the same broker, the same remedy)."""
FORWARD_BACKOFF = Backoff(base=0.05, cap=FORWARD_BACKOFF_MAX)
"""Shares to internal topics: shorter, since they stop the source partition's commits."""


class _Attempted(Protocol):
    """An attrs value counting its failed attempts (``Upload``, ``DeadLetter``, ``Forward``)."""

    @property
    def attempt(self) -> int: ...


T = TypeVar("T", bound=_Attempted)


def _retried(item: T) -> T:
    """``item`` with one more failed attempt (every lane item is a frozen attrs class; the
    attrs plugin cannot see that through the protocol bound, hence the typed alias)."""
    evolve: Callable[..., T] = attrs.evolve
    return evolve(item, attempt=item.attempt + 1)


class _Entry(Generic[T]):
    __slots__ = ("item", "refs")

    def __init__(self, item: T, refs: Sequence[RecordRef]) -> None:
        self.item = item
        self.refs = refs


class Lane(Generic[T]):
    """Pending outbound items of one kind, by id. See the module docstring."""

    def __init__(self, backoff: Backoff) -> None:
        self.backoff = backoff
        self._entries: dict[int, _Entry[T]] = {}
        self._new: deque[int] = deque()
        self._retry: list[tuple[float, int]] = []  # (due, id), a heap

    def add(self, item_id: int, item: T, refs: Sequence[RecordRef]) -> None:
        """Queue a new item holding ``refs`` (released when it is acknowledged)."""
        self._entries[item_id] = _Entry(item, refs)
        self._new.append(item_id)

    def take(self, now: float, limit: int | None = None) -> list[T]:
        """Items to produce now: retries whose backoff has passed, then new ones in order; at
        most ``limit`` of them, the rest stay queued."""
        room = (len(self._new) + len(self._retry)) if limit is None else max(0, limit)
        out: list[T] = []
        entries = self._entries
        retry = self._retry
        while retry and retry[0][0] <= now and len(out) < room:
            e = entries.get(heapq.heappop(retry)[1])
            if e is not None:
                out.append(e.item)
        new = self._new
        while new and len(out) < room:
            e = entries.get(new.popleft())
            if e is not None:
                out.append(e.item)
        return out

    def succeeded(self, item_id: int) -> Sequence[RecordRef] | None:
        """Forget an acknowledged item; returns the references it held (None: unknown id)."""
        e = self._entries.pop(item_id, None)
        return None if e is None else e.refs

    def failed(self, item_id: int, now: float) -> tuple[T, float] | None:
        """Schedule a refused item's retry; returns it with its attempt count raised, and the
        delay in seconds (None: unknown id)."""
        e = self._entries.get(item_id)
        if e is None:
            return None
        item = e.item = _retried(e.item)
        delay = self.backoff.delay(item.attempt)
        heapq.heappush(self._retry, (now + delay, item_id))
        return item, delay

    def drop(self, item_id: int) -> Sequence[RecordRef]:
        """Forget an item without an acknowledgement (given up); returns the references it
        held (empty for an unknown id)."""
        e = self._entries.pop(item_id, None)
        if e is None:
            return ()
        if any(i == item_id for _, i in self._retry):
            self._retry = [x for x in self._retry if x[1] != item_id]
            heapq.heapify(self._retry)
        return e.refs

    def get(self, item_id: int) -> T | None:
        e = self._entries.get(item_id)
        return None if e is None else e.item

    def refs(self, item_id: int) -> Sequence[RecordRef]:
        e = self._entries.get(item_id)
        return () if e is None else e.refs

    def __len__(self) -> int:
        """Items not yet acknowledged: new, waiting for a retry, or handed out."""
        return len(self._entries)

    @property
    def waiting(self) -> int:
        """Items not handed out: new or waiting for their retry."""
        return len(self._new) + len(self._retry)

    @property
    def in_flight(self) -> int:
        """Items handed out by ``take`` whose answer has not come back yet."""
        return len(self._entries) - self.waiting


class Outbox:
    """The three lanes, completed batches into uploads, and the completions (stats, logs,
    releases)."""

    def __init__(
        self,
        module: ModuleConfig,
        ledger: OffsetLedger,
        stats: EngineStats,
        codec: JsonCodec,
        ids: Iterator[int],
        dead_letter_max_attempts: int | None = DEAD_LETTER_MAX_ATTEMPTS,
    ) -> None:
        self.uploads: Lane[Upload] = Lane(UPLOAD_BACKOFF)
        self.dead_letters: Lane[DeadLetter] = Lane(DEAD_LETTER_BACKOFF)
        self.forwards: Lane[Forward] = Lane(FORWARD_BACKOFF)
        self.upload_failing_since: float | None = None
        """When the current run of failed uploads began (None: the last one succeeded)."""
        self.dead_letter_max_attempts = dead_letter_max_attempts
        """Failed attempts after which a dead letter is given up (None: never)."""
        self.dead_letters_failing = 0
        """Dead letters pending whose last attempt failed (waiting for their retry)."""
        self.dead_letter_failing_since: float | None = None
        """When ``dead_letters_failing`` last became non-zero (None while it is 0)."""
        self.module = module
        """The module whose results are uploaded (replaced by a reconfiguration)."""
        self._ledger = ledger
        self._stats = stats
        self._codec = codec
        self._ids = ids

    def complete(self, batch: CompletedBatch[list[RecordRef]], now: float) -> None:
        """A batch is complete: queue its upload holding its members' references, or release
        them at once when it has no results to upload."""
        stats = self._stats
        stats.batches_completed += 1
        if batch.timed_out:
            stats.batches_timed_out += 1
        refs = [r for a in batch.attachments if a for r in a]
        if not batch.uploadable:
            stats.batches_empty += 1
            release(refs, self._ledger, stats)
            return
        sizes = stats.batch_sizes
        sizes[len(batch.results)] = sizes.get(len(batch.results), 0) + 1
        module = self.module
        upload = Upload(
            upload_id=next(self._ids),
            batch_id=batch.batch_id,
            module=module.name,
            results=batch.results,
            records=upload_records(module, batch.batch_id, batch.results, self._codec, now),
        )
        self.uploads.add(upload.upload_id, upload, refs)

    def upload_done(self, upload_id: int, ok: bool, now: float, error: str | None) -> None:
        if ok:
            refs = self.uploads.succeeded(upload_id)
            if refs is not None:
                self._stats.uploads_ok += 1
                self.upload_failing_since = None
                release(refs, self._ledger, self._stats)
            return
        failed = self.uploads.failed(upload_id, now)
        if failed is None:
            return
        up, delay = failed
        self._stats.upload_failures += 1
        self._stats.upload_retries += 1
        if self.upload_failing_since is None:
            self.upload_failing_since = now
        log.error(
            "upload of batch %s failed (attempt %d): %s; retrying in %.1fs",
            up.batch_id,
            up.attempt,
            error,
            delay,
            extra={
                "event": "upload_failed",
                "batch_id": up.batch_id,
                "da_module": self.module.name,
            },
        )

    def dead_letter_done(self, dl_id: int, ok: bool, now: float) -> None:
        lane = self.dead_letters
        dl = lane.get(dl_id)
        if dl is None:
            return
        if ok:
            self._stats.dead_letters += 1
            if dl.attempt:
                self._not_failing()
            release(lane.succeeded(dl_id) or (), self._ledger, self._stats)
            return
        stats = self._stats
        stats.dead_letter_failures += 1
        if not dl.attempt:
            self.dead_letters_failing += 1
            if self.dead_letter_failing_since is None:
                self.dead_letter_failing_since = now
        src = dl.source
        where = {"topic": src.topic, "reason": dl.reason, "da_module": self.module.name}
        bound = self.dead_letter_max_attempts
        if bound is not None and dl.attempt + 1 >= bound:
            stats.dead_letters_lost += 1
            self._not_failing()
            release(lane.drop(dl_id), self._ledger, stats)
            log.error(
                "dead letter of %s[%d]@%d (reason %s) failed %d times; giving up: the record is "
                "released without a dead letter (dead_letter_lost)",
                src.topic,
                src.partition,
                src.offset,
                dl.reason,
                dl.attempt + 1,
                extra={**where, "event": "dead_letter_lost"},
            )
            return
        failed = lane.failed(dl_id, now)
        if failed is None:  # pragma: no cover - the entry was found above
            return
        dl, delay = failed
        log.error(
            "dead letter of %s[%d]@%d (reason %s) failed (attempt %d of %s); retrying in %.1fs",
            src.topic,
            src.partition,
            src.offset,
            dl.reason,
            dl.attempt,
            bound,
            delay,
            extra={**where, "event": "dead_letter_failed"},
        )

    def _not_failing(self) -> None:
        """A failing dead letter left the failing state (acknowledged or given up)."""
        self.dead_letters_failing = max(0, self.dead_letters_failing - 1)
        if not self.dead_letters_failing:
            self.dead_letter_failing_since = None

    def forward_done(self, fwd_id: int, ok: bool, now: float, error: str | None) -> None:
        if ok:
            refs = self.forwards.succeeded(fwd_id)
            if refs is not None:
                release(refs, self._ledger, self._stats)
            return
        refs = self.forwards.refs(fwd_id)
        failed = self.forwards.failed(fwd_id, now)
        if failed is None:
            return
        fw, delay = failed
        self._stats.forward_failures += 1
        log.error(
            "forwarding %s to %s failed (attempt %d): %s; retrying in %.2fs",
            refs[0].tp if refs else "?",
            fw.record.topic,
            fw.attempt,
            error,
            delay,
            extra={"topic": fw.record.topic, "da_module": self.module.name},
        )
