# The guide's batch upload handler (部署指南 §3 批次上传回调示例), kept as written but for the
# fixes marked "guide fix"; async_main.py imports it.
# fmt: off
# ruff: noqa
# mypy: ignore-errors
import logging  # guide fix: the snippet uses logging and time without importing them
import time


class _LoggingProducer:  # guide fix: the snippet sends through a `kafka_producer` it never creates;
    """Stands in for a started producer (aiokafka's AIOKafkaProducer in a deployment): the tests
    run on the in-memory bus, so it logs what it would send, in one line."""

    async def send(self, topic, value):
        stations = sorted(r["station_id"] for r in value["stations"])
        logging.info("send to %s: batch %s, %d stations %s", topic, value["batch_id"],
                     value["station_count"], stations)


kafka_producer = _LoggingProducer()  # guide fix: (see above)


async def batch_upload_handler(batch_id, results_list):
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
  await kafka_producer.send("MODULE-OUTPUT-LOAD_PREDICTION", value=payload)
