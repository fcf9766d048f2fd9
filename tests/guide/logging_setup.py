# The guide's logging configuration example (部署指南 监控和日志 §日志配置示例), kept as written
# but for the fix marked "guide fix".
# fmt: off
# ruff: noqa
# mypy: ignore-errors
import logging
import os
from logging.handlers import RotatingFileHandler

# 日志文件路径（可通过环境变量指定）
LOG_FILE = os.getenv("DATA_ANALYSIS_LOG", "data_analysis.log")
LOG_FORMAT = "[%(asctime)s] %(levelname)s %(name)s %(message)s"
LOG_LEVEL = os.getenv("LOG_LEVEL", "INFO")

# 配置日志
logging.basicConfig(
    level=getattr(logging, LOG_LEVEL.upper()),  # guide fix: .upper(); LOG_LEVEL=info gave logging.info, a function (TypeError)
    format=LOG_FORMAT,
    handlers=[
        logging.StreamHandler(),  # 控制台输出
        RotatingFileHandler(
            LOG_FILE,
            maxBytes=10*1024*1024,  # 10MB
            backupCount=5,
            encoding="utf-8"
        )
    ]
)
