"""批次上传回调示例 — the guide's batch upload handler.

``results_list`` items already carry ``station_id``; stations whose callback returned None are
not in it. The handler may be sync or async; the framework awaits it when needed. Offsets of
the batch's inputs are committed only after it returns without raising.
"""

import json
import logging
import time
from typing import Any

from d_a.config import KAFKA_CONFIG


class _LogProducer:
    """Stands in for a Kafka producer when no broker is configured: logs the payload."""

    async def send(self, topic: str, value: Any) -> None:
        stations = [r.get("station_id") for r in value.get("stations", [])]
        logging.info("upload to %s: batch %s, stations %s", topic, value["batch_id"], stations)


def _make_producer() -> Any:
    servers = KAFKA_CONFIG.get("producer", {}).get("bootstrap_servers") or KAFKA_CONFIG.get(
        "bootstrap_servers"
    )
    if not servers:
        return _LogProducer()
    from aiokafka import AIOKafkaProducer

    class _KafkaProducer:
        def __init__(self) -> None:
            self._p: Any = None

        async def send(self, topic: str, value: Any) -> None:
            if self._p is None:
                self._p = AIOKafkaProducer(
                    bootstrap_servers=servers,
                    value_serializer=lambda v: json.dumps(v, ensure_ascii=False).encode(),
                )
                await self._p.start()
            await self._p.send_and_wait(topic, value=value)

    return _KafkaProducer()


kafka_producer = _make_producer()


async def batch_upload_handler(batch_id: str, results_list: list[dict[str, Any]]) -> None:
    """一次性上传同一批所有场站结果"""
    if not results_list:
        logging.warning("%s 批次没有有效结果，跳过上传", batch_id)
        return

    payload = {
        "batch_id": batch_id,
        "module": "load_prediction",
        "timestamp": time.time(),
        "stations": results_list,
        "station_count": len(results_list),
    }
    logging.info("批次 %s 上传 %d 个场站结果", batch_id, len(results_list))
    await kafka_producer.send("MODULE-OUTPUT-LOAD_PREDICTION", value=payload)
