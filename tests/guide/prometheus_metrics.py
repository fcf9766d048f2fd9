# The guide's Prometheus integration (部署指南 监控和日志 §Prometheus监控集成), kept as
# written; the guide adds it to the package's __init__, the test runs it next to the package.
# fmt: off
# ruff: noqa
# mypy: ignore-errors
# 在data_analysis/__init__.py中添加
from prometheus_client import start_http_server, Counter, Gauge, Histogram

# 定义指标
DATA_PROCESSED = Counter('data_analysis_processed_total', 'Total data processed')
ERROR_COUNT = Counter('data_analysis_errors_total', 'Total errors', ['error_type'])
MEMORY_USAGE = Gauge('data_analysis_memory_usage', 'Memory usage in MB')
STATION_COUNT = Gauge('data_analysis_station_count', 'Number of active stations')
PROCESSING_TIME = Histogram('data_analysis_processing_seconds', 'Processing time')

# 在服务启动时启动metrics服务器
start_http_server(8001)  # 在8001端口暴露metrics
