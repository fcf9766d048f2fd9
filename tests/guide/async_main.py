#!/usr/bin/env python
# -*- coding: utf-8 -*-
# The guide's async_main.py (部署指南 §3 异步服务启动示例), kept as written but for the fixes
# marked "guide fix".
# fmt: off
# ruff: noqa
# mypy: ignore-errors
"""
异步服务启动脚本
"""
import asyncio
from d_a import AsyncDataAnalysisService
from d_a.config import KAFKA_CONFIG
import logging
from batch_upload_handler import batch_upload_handler  # guide fix: used below, never defined or imported

logging.basicConfig(
    level=logging.INFO,
    format='[%(asctime)s] %(levelname)s %(name)s %(message)s'
)

async def my_callback(station_id, module_input):
    """异步处理数据的回调函数"""
    logging.info(f"处理场站 {station_id} 的数据")
    # 这里添加你的异步业务逻辑
    await asyncio.sleep(0.01)  # 模拟异步操作
    return module_input  # 返回结果将自动上传到Kafka

async def main():
    service = AsyncDataAnalysisService(
        module_name='load_prediction',  # 指定模块名称
        kafka_config=KAFKA_CONFIG,
        data_expire_seconds=600
    )
    
    try:
        await service.start(  # guide fix: the guide indents this call less than `try:` (IndentationError)
          callback=my_callback,
          batch_upload_handler=batch_upload_handler,
        )
        # 保持运行
        await asyncio.Event().wait()
    except (KeyboardInterrupt, asyncio.CancelledError):  # guide fix: under asyncio.run, Ctrl-C cancels main() (CancelledError here), so service.stop() never ran
        logging.info("收到停止信号，正在关闭服务...")
        await service.stop()

if __name__ == '__main__':
    try:  # guide fix: asyncio.run re-raises Ctrl-C as KeyboardInterrupt after main() ends: a traceback and exit code 1
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
