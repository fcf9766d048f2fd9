#!/usr/bin/env python
# -*- coding: utf-8 -*-
# The guide's sync_main.py (部署指南 §3 同步服务启动示例), kept as written: it runs unchanged.
# fmt: off
# ruff: noqa
# mypy: ignore-errors
"""
同步服务启动脚本
"""
from d_a import DataAnalysisService
from d_a.config import KAFKA_CONFIG
import logging

logging.basicConfig(
    level=logging.INFO,
    format='[%(asctime)s] %(levelname)s %(name)s %(message)s'
)

def my_callback(station_id, module_input):
    """处理数据的回调函数"""
    logging.info(f"处理场站 {station_id} 的数据")
    # 这里添加你的业务逻辑
    return module_input  # 返回结果将自动上传到Kafka

if __name__ == '__main__':
    service = DataAnalysisService(
        module_name='load_prediction',  # 指定模块名称
        kafka_config=KAFKA_CONFIG,
        data_expire_seconds=600
    )
    
    try:
        service.start(callback=my_callback, background=False)
    except KeyboardInterrupt:
        logging.info("收到停止信号，正在关闭服务...")
        service.stop()
