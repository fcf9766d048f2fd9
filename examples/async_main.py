#!/usr/bin/env python
"""异步服务启动脚本 — the guide's async_main.py (its indentation repaired), runnable as written.

Uses the batch upload handler of ``batch_upload_handler.py``. With no Kafka configured it runs on
the embedded in-memory bus. Ctrl-C (SIGINT) stops it cleanly.
"""

import asyncio
import contextlib
import logging
from typing import Any

from batch_upload_handler import batch_upload_handler

from d_a import AsyncDataAnalysisService
from d_a.config import KAFKA_CONFIG

logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(levelname)s %(name)s %(message)s")


async def my_callback(station_id: str, module_input: dict[str, Any]) -> dict[str, Any]:
    """异步处理数据的回调函数"""
    logging.info(f"处理场站 {station_id} 的数据")
    # 这里添加你的异步业务逻辑
    await asyncio.sleep(0.01)  # 模拟异步操作
    return module_input  # 返回结果将自动上传到Kafka


async def main() -> None:
    service = AsyncDataAnalysisService(
        module_name="load_prediction",  # 指定模块名称
        kafka_config=KAFKA_CONFIG,
        data_expire_seconds=600,
    )

    try:
        await service.start(
            callback=my_callback,
            batch_upload_handler=batch_upload_handler,
        )
        # 保持运行
        await asyncio.Event().wait()
    except (KeyboardInterrupt, asyncio.CancelledError):
        logging.info("收到停止信号，正在关闭服务...")
    finally:
        await service.stop()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
