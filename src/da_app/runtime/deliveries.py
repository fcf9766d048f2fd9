"""How the shells turn produced records' delivery reports into completions.

An upload of n records answers with n ``UploadDone`` parts (``UploadParts`` counts them), a
dead letter with one ``DeadLetterDone``, each share with one ``ForwardDone``. A record that
cannot even be handed to the client (a full local queue, a closed producer) is a failed
delivery, answered like any other: nothing is lost silently, the engine retries it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable

from da_app.runtime import actions as a
from da_core.engine import DeadLetter, Forward, Upload
from da_core.ports import AsyncProducer, Producer
from da_core.types import DeliveryReport, OutboundRecord


def produce(
    producer: Producer,
    rec: OutboundRecord,
    done: Callable[[DeliveryReport], a.Completion],
    put: Callable[[a.Completion], None],
) -> None:
    """Produce one record; ``put`` gets ``done(report)`` when its report is served."""

    def on_delivery(report: DeliveryReport) -> None:
        put(done(report))

    try:
        producer.produce(rec, on_delivery)
    except Exception as exc:
        on_delivery(DeliveryReport(rec, a.exc_text(exc)))


def produce_work(
    producer: Producer, work: a.Work, put: Callable[[a.Completion], None], *, uploads: bool = True
) -> None:
    """Produce the records of ``work``: every upload's (unless ``uploads`` is False: a
    custom handler sends them), the dead letters and the shares."""
    for up in work.uploads if uploads else ():
        for rec in up.records:
            produce(producer, rec, functools.partial(a.UploadDone.of, up.upload_id), put)
    for dl in work.dead_letters:
        produce(producer, dl.record, functools.partial(a.DeadLetterDone.of, dl.dl_id), put)
    for fw in work.forwards:
        produce(producer, fw.record, functools.partial(a.ForwardDone.of, fw.fwd_id), put)


async def send_upload(producer: AsyncProducer, up: Upload) -> list[a.UploadDone]:
    """Send an upload's records together; one part per record."""
    sent = [producer.send(r) for r in up.records]
    reports = await asyncio.gather(*sent, return_exceptions=True)
    return [
        a.UploadDone(up.upload_id, False, a.exc_text(r))
        if isinstance(r, BaseException)
        else a.UploadDone.of(up.upload_id, r)
        for r in reports
    ]


async def send_dead_letter(producer: AsyncProducer, dl: DeadLetter) -> a.DeadLetterDone:
    try:
        return a.DeadLetterDone.of(dl.dl_id, await producer.send(dl.record))
    except Exception:
        return a.DeadLetterDone(dl.dl_id, False)


async def send_forwards(producer: AsyncProducer, forwards: list[Forward]) -> list[a.ForwardDone]:
    """Send shares in one batch (``send_many``); all fail together if the batch does."""
    try:
        reports = await producer.send_many([f.record for f in forwards])
    except Exception as exc:
        return [a.ForwardDone(f.fwd_id, False, a.exc_text(exc)) for f in forwards]
    return [a.ForwardDone.of(f.fwd_id, r) for f, r in zip(forwards, reports, strict=True)]
