"""``CommitCall``: librdkafka's synchronous commit, with a bound on how long the caller waits.

``Consumer.commit(asynchronous=False)`` has no timeout: while the group coordinator is
unreachable (the broker stopped since the last poll, or is in a controlled shutdown that has
already moved the coordinator away) it waits for a coordinator, for the whole outage. The loop
that called it would stall there, miss its stop signal and turn its liveness probe red.

So the commit runs on a short-lived daemon thread and the caller waits at most ``timeout``
seconds for its answer. A commit not answered by then stays *in flight*: the caller gets a
``CommitError`` (the loop keeps the offsets and retries), no other commit is sent until that
one has its answer (commits stay in order: an older commit can never land after a newer one),
and ``close`` does not destroy the client under the waiting thread: it hands the closing to
that thread, which closes the client once the commit has its answer (the broker back), or
never, when the process exits first (the group then expires the membership as it would for a
crash: all a member that cannot reach its coordinator could have had anyway). librdkafka's handles
are thread-safe: the thread's commit and the loop's ``consume`` may run at the same time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

import confluent_kafka as ck

log = logging.getLogger("da_adapters.confluent")

COMMIT_TIMEOUT = 5.0
"""Default bound (seconds) of a caller's wait for a commit's answer. A healthy commit takes
milliseconds; one still unanswered after this is retried by the caller's loop."""


class CommitCall:
    """One synchronous commit of ``offsets`` on its own daemon thread (started at once)."""

    def __init__(self, consumer: ck.Consumer, offsets: Sequence[ck.TopicPartition]) -> None:
        self.sent_at = time.monotonic()
        self.result: list[ck.TopicPartition] | None = None
        self.error: BaseException | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._close_after = False
        self._consumer = consumer
        self._offsets = list(offsets)
        threading.Thread(target=self._run, name="da-confluent-commit", daemon=True).start()

    def _run(self) -> None:
        try:
            self.result = self._consumer.commit(offsets=self._offsets, asynchronous=False)
        except BaseException as exc:  # handed to the caller; a thread must not die noisily
            self.error = exc
        finally:
            with self._lock:
                self._done.set()
                close = self._close_after
            if close:
                self._close_client()

    def _close_client(self) -> None:
        try:
            self._consumer.close()
        except Exception as exc:  # the owner is gone: nobody else could hear of it
            log.warning("closing a consumer after its late commit answer: %s", exc)
        else:
            log.info("consumer closed after its late commit answer (%.0fs)", self.age())

    def close_when_answered(self) -> bool:
        """The owner closes: True when this call will close the client once answered, False
        when it has its answer already (the owner closes the client itself)."""
        with self._lock:
            if self._done.is_set():
                return False
            self._close_after = True
            return True

    def wait(self, timeout: float) -> bool:
        """True once the commit has its answer (``result`` or ``error``), waiting at most
        ``timeout`` seconds."""
        return self._done.wait(max(0.0, timeout))

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def age(self) -> float:
        """Seconds since the commit was sent."""
        return time.monotonic() - self.sent_at
