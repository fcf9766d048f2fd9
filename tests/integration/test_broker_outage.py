"""Issue 10 items 11-13 on a real broker of the test's own (never the shared one): the broker
unreachable at start, then restarted in the middle of a stream on the same port and data
directory; every record is processed, nothing crashes, and a stop stays bounded."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from typing import Any

import pytest

from da_adapters.confluent import ConfluentConsumer
from da_app.services import DataAnalysisService
from da_core.errors import CommitError
from da_core.types import TopicPartition
from tests.integration.e2e_support import (
    RT,
    ensure_topic,
    produce,
    rt_row,
    service_config,
    unique,
)
from tests.integration.kafka_fixtures import load_broker_module, unavailable
from tests.support.waiting import async_wait_for, wait_for

pytestmark = pytest.mark.timeout(420)


@pytest.fixture
def closed_port() -> int:
    """A port of 127.0.0.1 nothing listens on (yet), for a private broker started later (the
    test stops that broker by PID in its ``finally``)."""
    module: Any = load_broker_module()
    return int(module.free_ports(1)[0])


def _start_private_broker(port: int) -> Any:
    module: Any = load_broker_module()
    try:
        return module.start_broker(detach=False, die_with_parent=True, port=port, timeout=180)
    except Exception as exc:  # no Java / jars here
        unavailable(f"private broker: {type(exc).__name__}: {exc}")


def test_sync_service_survives_an_unreachable_start_and_a_broker_restart(
    closed_port: int,
) -> None:
    bootstrap = f"127.0.0.1:{closed_port}"
    seen: set[str] = set()
    lock = threading.Lock()

    def callback(station_id: str, _inputs: dict[str, Any]) -> dict[str, Any]:
        with lock:
            seen.add(station_id)
        return {"ok": True}

    cfg = service_config(
        bootstrap,
        unique("outage"),
        service={"health_port": 0, "metrics_port": 0, "shutdown_timeout_seconds": 10.0},
    )
    # the topics appear with the first records, possibly after the service subscribed
    cfg["KAFKA_CONFIG"]["consumer"]["metadata_max_age_ms"] = 1000
    svc = DataAnalysisService(module_name="load_prediction", config=cfg, adapter="confluent")
    broker: Any = None
    try:
        svc.start(callback)  # the broker is not there: the service must stay up and say so

        def unreachable_named() -> bool:
            reasons = svc.readiness().body.get("reasons", [])
            return any(bootstrap in r and "unreachable" in r for r in reasons)

        wait_for(unreachable_named, 60, what="/ready naming the unreachable broker")
        assert svc.runner is not None
        assert svc.runner.alive
        assert svc.liveness().ok

        broker = _start_private_broker(closed_port)
        first = [f"A{i}" for i in range(10)]
        produce(bootstrap, [(RT, sid, {"realTimeData": [rt_row(sid, 0, 1.0)]}) for sid in first])
        wait_for(lambda: set(first) <= seen, 120, what="stations before the restart")

        broker.halt()  # mid-stream outage: the loop must not block nor exit
        assert svc.runner.alive
        broker.resume()
        second = [f"B{i}" for i in range(10)]
        produce(bootstrap, [(RT, sid, {"realTimeData": [rt_row(sid, 1, 2.0)]}) for sid in second])
        wait_for(lambda: set(second) <= seen, 120, what="stations after the restart")
        assert svc.runner.stats.broker_disconnects >= 1
        # librdkafka's connection reports settle within a statistics period or two after a
        # restart (the async test waits alike)
        wait_for(
            lambda: svc.runner is not None and svc.runner.stats.broker_connected is True,
            60,
            what="the broker reported back",
        )

        broker.halt()  # a stop during an outage ends within the configured bound
        began = time.monotonic()
        svc.stop()
        assert time.monotonic() - began < 15.0
        # A commit the stop left waiting keeps its handle open until the broker answers (the
        # consumer's "left open" warning); once the broker is back, it ends.
        broker.resume()
        wait_for(lambda: not _waiting_commits(), 90, what="the commit the stop left waiting to end")
    finally:
        svc.stop()
        if broker is not None:
            broker.stop(timeout=10.0)


def _waiting_commits() -> list[threading.Thread]:
    """The confluent adapter's commit threads still waiting for a broker's answer."""
    return [t for t in threading.enumerate() if t.name == "da-confluent-commit" and t.is_alive()]


def test_a_confluent_commit_the_dead_broker_never_answers_is_bounded_then_confirmed(
    closed_port: int,
) -> None:
    """Issue 10 item 12: the broker stops between a poll and a commit (the client cannot know
    yet): the commit gives up after ``commit_timeout``, no second one is sent while the first
    waits, ``close`` is not held by it either, and once the broker is back the waiting commit
    gets its answer and the next one is confirmed."""
    bootstrap = f"127.0.0.1:{closed_port}"
    broker = _start_private_broker(closed_port)
    topic = unique("bounded-commit")
    consumer: ConfluentConsumer | None = None
    try:
        ensure_topic(bootstrap, topic, partitions=1)
        produce(bootstrap, [(topic, "S1", {"n": i}) for i in range(3)])
        consumer = c = ConfluentConsumer(
            group_id=unique("bounded-commit"),
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            commit_timeout=2.0,
        )
        c.subscribe([topic])
        got: list[Any] = []

        def all_read() -> bool:
            got.extend(c.poll(0.5))
            return len(got) >= 3

        wait_for(all_read, 60, what="three records")
        tp = TopicPartition(topic, 0)
        c.commit({tp: 1})  # healthy: answered at once
        assert c.committed([tp]) == {tp: 1}

        broker.halt()  # no poll from here on: the client has not been told
        began = time.monotonic()
        with pytest.raises(CommitError, match="not answered within 2s"):
            c.commit({tp: 2})
        assert time.monotonic() - began < 4.0
        with pytest.raises(CommitError, match="still waiting for the group coordinator"):
            c.commit({tp: 3})  # refused at once: commits stay in order
        assert time.monotonic() - began < 4.5

        broker.resume()

        def confirmed() -> bool:
            try:
                c.commit({tp: 3})
            except CommitError:
                return False
            return True

        wait_for(confirmed, 120, what="a commit confirmed after the restart")
        assert c.committed([tp]) == {tp: 3}
    finally:
        if consumer is not None:
            consumer.close()
        broker.stop(timeout=10.0)


def test_closing_a_confluent_consumer_whose_commit_waits_for_a_dead_broker_is_bounded(
    closed_port: int,
) -> None:
    bootstrap = f"127.0.0.1:{closed_port}"
    broker = _start_private_broker(closed_port)
    topic = unique("close-bounded")
    try:
        ensure_topic(bootstrap, topic, partitions=1)
        produce(bootstrap, [(topic, "S1", {"n": 0})])
        consumer = ConfluentConsumer(
            group_id=unique("close-bounded"),
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            commit_timeout=1.0,
        )
        consumer.subscribe([topic])
        wait_for(lambda: bool(consumer.poll(0.5)), 60, what="the record")
        broker.halt()
        tp = TopicPartition(topic, 0)
        with pytest.raises(CommitError):
            consumer.commit({tp: 1})
        began = time.monotonic()
        consumer.close()
        assert time.monotonic() - began < 5.0
        with pytest.raises(RuntimeError, match="closed"):
            consumer.commit({tp: 1})
        # the waiting commit's thread closes the client once the broker answers
        broker.resume()
        wait_for(
            lambda: not any(t.name == "da-confluent-commit" for t in threading.enumerate()),
            120,
            what="the waiting commit answered and its client closed",
        )
    finally:
        broker.stop(timeout=10.0)


async def test_async_service_survives_an_unreachable_start_and_a_broker_restart(
    closed_port: int,
) -> None:
    """The aiokafka service through the same outages as the sync one above: started with no
    broker, then the broker restarted mid-stream; every record processed, a bounded stop
    during an outage."""
    from da_app.services import AsyncDataAnalysisService

    bootstrap = f"127.0.0.1:{closed_port}"
    seen: set[str] = set()

    async def callback(station_id: str, _inputs: dict[str, Any]) -> dict[str, Any]:
        seen.add(station_id)
        return {"ok": True}

    cfg = service_config(
        bootstrap,
        unique("outage-async"),
        service={"health_port": 0, "metrics_port": 0, "shutdown_timeout_seconds": 10.0},
    )
    # The topics appear only with the first records, after the service may have subscribed:
    # aiokafka sees a new topic at its next metadata refresh (metadata_max_age_ms, 5 min).
    cfg["KAFKA_CONFIG"]["consumer"]["metadata_max_age_ms"] = 1000
    svc = AsyncDataAnalysisService(module_name="load_prediction", config=cfg, adapter="aiokafka")
    broker: Any = None
    try:
        await svc.start(callback)

        def unreachable_named() -> bool:
            reasons = svc.readiness().body.get("reasons", [])
            return any(bootstrap in r and "unreachable" in r for r in reasons)

        await async_wait_for(unreachable_named, 60, what="/ready naming the unreachable broker")
        assert svc.runner is not None
        assert svc.runner.alive
        assert svc.liveness().ok

        broker = await asyncio.to_thread(_start_private_broker, closed_port)
        first = [f"A{i}" for i in range(10)]
        rows = [(RT, sid, {"realTimeData": [rt_row(sid, 0, 1.0)]}) for sid in first]
        await asyncio.to_thread(produce, bootstrap, rows)
        await async_wait_for(lambda: set(first) <= seen, 120, what="stations before the restart")

        await asyncio.to_thread(broker.halt)  # mid-stream outage: the loop goes on
        assert svc.runner.alive
        await asyncio.to_thread(broker.resume)
        second = [f"B{i}" for i in range(10)]
        rows = [(RT, sid, {"realTimeData": [rt_row(sid, 1, 2.0)]}) for sid in second]
        await asyncio.to_thread(produce, bootstrap, rows)
        await async_wait_for(lambda: set(second) <= seen, 120, what="stations after the restart")
        assert svc.runner.stats.broker_disconnects >= 1
        await async_wait_for(
            lambda: svc.runner is not None and svc.runner.stats.broker_connected is True,
            60,
            what="the broker reported back",
        )

        await asyncio.to_thread(broker.halt)  # a stop during an outage ends within the bound
        began = time.monotonic()
        await svc.stop()
        assert time.monotonic() - began < 15.0
    finally:
        await svc.stop()
        if broker is not None:
            await asyncio.to_thread(broker.stop, 10.0)


async def test_closing_an_aiokafka_producer_whose_records_wait_for_a_dead_broker_is_bounded(
    closed_port: int,
) -> None:
    """aiokafka's ``stop`` waits without bound for every batch's answer (aio-libs/aiokafka#1101):
    the adapter's ``close`` fails what is still waiting once its bound passes, so the close
    ends, each waiting send resolves to a failed report (never committed: consumed again), and
    no task of the client outlives it (the suite fails a test that leaves tasks behind)."""
    from da_adapters.aiokafka import AiokafkaProducer
    from da_core.types import OutboundRecord

    bootstrap = f"127.0.0.1:{closed_port}"
    broker = await asyncio.to_thread(_start_private_broker, closed_port)
    topic = unique("producer-close")
    try:
        await asyncio.to_thread(ensure_topic, bootstrap, topic, 1)
        producer = AiokafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        first = await producer.send(OutboundRecord(topic, b"before", key=b"S1"))
        assert first.error is None
        await asyncio.to_thread(broker.halt)
        waiting = [
            asyncio.ensure_future(producer.send(OutboundRecord(topic, b"%d" % i, key=b"S1")))
            for i in range(5)
        ]
        await async_wait_for(lambda: producer.waiting == 5, 30, what="5 records in the client")
        assert not any(t.done() for t in waiting)
        began = time.monotonic()
        await producer.close(timeout=1.0)
        assert time.monotonic() - began < 1.0 + 2.0 + 1.0
        reports = await asyncio.wait_for(asyncio.gather(*waiting), 5.0)
        # failed by the close, not refused by a closed client
        assert all("closed before the broker answered" in (r.error or "") for r in reports)
        assert producer.waiting == 0
    finally:
        await asyncio.to_thread(broker.stop, 10.0)


def test_a_broker_started_by_a_parent_that_ignores_sigterm_still_stops_on_sigterm(
    closed_port: int,
) -> None:
    """CI runs the suite with SIGTERM ignored; the broker must not inherit that, or every
    ``halt``/``stop`` waits its whole timeout and then kills it (no controlled shutdown)."""
    old = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        broker = _start_private_broker(closed_port)
    finally:
        signal.signal(signal.SIGTERM, old)
    try:
        began = time.monotonic()
        broker.halt(timeout=60.0)
        assert time.monotonic() - began < 30.0  # SIGTERM honoured, not the SIGKILL fallback
    finally:
        broker.stop(timeout=10.0)
