"""What the aiokafka consumer and producer share: keyword arguments from the settings plus
explicit overrides, and the SSL context built from ``ClientConfig.ssl``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka.errors import KafkaTimeoutError

from da_adapters.kafka_config import (
    ClientConfig,
    KafkaConfigSource,
    KafkaSections,
    redact,
    servers_list,
)
from da_core.errors import ConfigError, DataAnalysisError

log = logging.getLogger("da_adapters.aiokafka")

_RESET_ALIASES = {
    "smallest": "earliest",
    "beginning": "earliest",
    "largest": "latest",
    "end": "latest",
    "error": "none",
}
_RESETS = ("earliest", "latest", "none")


AIOKAFKA_LOGGERS = (
    "aiokafka",
    "aiokafka.conn",
    "aiokafka.cluster",
    "aiokafka.consumer.consumer",
    "aiokafka.consumer.fetcher",
    "aiokafka.consumer.group_coordinator",
    "aiokafka.producer.producer",
    "aiokafka.producer.sender",
)
"""aiokafka's loggers that repeat a line per reconnect attempt during a broker outage; each
gets a ``da_adapters.log_throttle.RateLimitFilter`` when a client is made."""

COMMIT_TIMEOUT = 10.0
"""Seconds a commit may wait for the broker (a commit during an outage fails after this
instead of holding the loop for the whole outage; the ledger keeps the offsets)."""


class AiokafkaError(DataAnalysisError):
    """aiokafka reported an error the caller must see (a fetch error such as an authorization
    failure or an out-of-range offset with ``auto_offset_reset='none'``, a failed metadata or
    offset request). The client's exception is chained."""


def source_or_empty(settings: KafkaConfigSource | None) -> KafkaConfigSource:
    return settings if settings is not None else KafkaSections()


def reset_policy(value: str) -> str:
    """``auto_offset_reset`` in aiokafka's words (``earliest``, ``latest`` or ``none``)."""
    text = str(value).strip().lower()
    text = _RESET_ALIASES.get(text, text)
    if text not in _RESETS:
        raise ConfigError(f"auto_offset_reset {value!r}: expected 'earliest', 'latest' or 'none'")
    return text


def log_notes(client: ClientConfig, what: str) -> None:
    for note in client.notes:
        log.warning("%s: %s", what, note)


def build_ssl_context(options: Mapping[str, Any]) -> ssl.SSLContext:
    """The SSL context for ``ClientConfig.ssl`` (``cafile``, ``certfile``, ``keyfile``,
    ``password``, ``crlfile``, ``check_hostname``, ``ciphers``)."""
    from aiokafka.helpers import create_ssl_context

    context: ssl.SSLContext = create_ssl_context(
        cafile=options.get("cafile"),
        certfile=options.get("certfile"),
        keyfile=options.get("keyfile"),
        password=options.get("password"),
    )
    crlfile = options.get("crlfile")
    if crlfile:
        context.load_verify_locations(crlfile)
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    if "check_hostname" in options:
        context.check_hostname = bool(options["check_hostname"])
    ciphers = options.get("ciphers")
    if ciphers:
        context.set_ciphers(str(ciphers))
    return context


def client_kwargs(
    client: ClientConfig,
    what: str,
    *,
    bootstrap_servers: str | Sequence[str] | None,
    extra: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The constructor keyword arguments: the translated ones, ``bootstrap_servers`` and
    ``extra`` over them, and an ``ssl_context`` when ``ssl_*`` settings were given."""
    kwargs: dict[str, Any] = dict(client.config)
    if bootstrap_servers is not None:
        kwargs["bootstrap_servers"] = servers_list(bootstrap_servers)
    kwargs.update(extra or {})
    if not kwargs.get("bootstrap_servers"):
        raise ConfigError(
            f"{what}: no bootstrap servers (set KAFKA_CONFIG bootstrap_servers or pass "
            "bootstrap_servers=...)"
        )
    if client.ssl and kwargs.get("ssl_context") is None:
        try:
            kwargs["ssl_context"] = build_ssl_context(client.ssl)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise ConfigError(
                f"{what}: cannot build the SSL context from ssl_* settings: {exc}"
            ) from exc
    return kwargs


def describe_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    shown = {
        k: (f"<{type(v).__name__}>" if callable(v) or k == "ssl_context" else v)
        for k, v in kwargs.items()
    }
    return redact(shown)


async def stop_consumer(consumer: Any, what: str) -> None:
    """``AIOKafkaConsumer.stop()``, finished even when a broker is unreachable.

    aiokafka's ``Fetcher.close`` cancels its pending fetch tasks and then awaits each one
    (aio-libs/aiokafka#647): a fetch waiting out its retry backoff (every broker down) raises
    ``CancelledError`` into the caller, and ``stop`` ends there with its client still open.
    That ``CancelledError`` is not ours when our own task is not being cancelled: the rest of
    the fetcher's tasks are then cancelled and gathered, and the client closed, here."""
    try:
        await consumer.stop()
        return
    except asyncio.CancelledError:
        # Python 3.11+ tells a cancel of ours (a bounded close that ran out) from aiokafka's
        # (``Task.cancelling``); 3.10 cannot: there the stop ends as before.
        cancelling = getattr(asyncio.current_task(), "cancelling", None)
        if cancelling is None or cancelling():
            raise
    log.info("%s: a fetch cancelled by stop() raised; finishing the stop", what)
    fetcher = getattr(consumer, "_fetcher", None)
    pending = [t for t in getattr(fetcher, "_pending_tasks", ()) if not t.done()]
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    await consumer._client.close()


STOP_ABORT_GRACE = 2.0
"""Seconds a producer stop may take once what it could not deliver has been failed."""


async def stop_producer(producer: Any, timeout: float) -> None:
    """``AIOKafkaProducer.stop()`` within ``timeout`` seconds, then finished even when a broker
    is unreachable.

    aiokafka's ``stop`` first waits until every batch has its answer, with no bound
    (aio-libs/aiokafka#1101): with every broker down it never returns, and cancelling it
    leaves the sender, the metadata task and the accumulator's close running with the client
    open. When the bound passes, the batches still waiting are failed (their sends resolve to
    failed reports, so the records are not committed and are consumed again), which lets the
    stop close the sender. Cancelling the sender ends ``stop`` before it closes the client, so
    the client is closed here. Only a stop that still does not end is cancelled."""
    stop = asyncio.ensure_future(producer.stop())
    try:
        done, _ = await asyncio.wait([stop], timeout=max(timeout, 0.0))
        if not done:
            log.warning(
                "producer: stop could not deliver what is in flight within %.1fs; failing it "
                "(not committed, it will be consumed again)",
                timeout,
            )
            _fail_waiting_batches(getattr(producer, "_message_accumulator", None))
            done, _ = await asyncio.wait([stop], timeout=STOP_ABORT_GRACE)
    except asyncio.CancelledError:
        stop.cancel()
        raise
    if not done:
        log.error("producer: stop did not end %.1fs after failing its batches", STOP_ABORT_GRACE)
        stop.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await stop
    if stop.cancelled() or stop.exception() is not None:
        # The sender's close awaits the task it cancelled, and that CancelledError ends
        # ``stop`` before it closes the client (metadata task and connections).
        client = getattr(producer, "client", None)
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()


def _fail_waiting_batches(accumulator: Any) -> None:
    """Fail every batch the accumulator still holds; the failure reaches the sends through
    their records' futures. Each batch also has futures of its own that aiokafka fails with
    them. It reads the batch's result future itself, but not its drain waiter, which only a
    sender taking the batch or a writer waiting for room would read: both are read here, so
    that no "Future exception was never retrieved" is logged once the producer is gone."""
    fail_all = getattr(accumulator, "fail_all", None)
    if not callable(fail_all):
        return
    queues = getattr(accumulator, "_batches", {})
    batches = [b for q in list(queues.values()) for b in q]
    batches += list(getattr(accumulator, "_pending_batches", ()))
    fail_all(KafkaTimeoutError("producer closed before the broker answered"))
    for batch in batches:
        for name in ("_drain_waiter", "future"):
            waiter = getattr(batch, name, None)
            if isinstance(waiter, asyncio.Future) and waiter.done() and not waiter.cancelled():
                waiter.exception()
