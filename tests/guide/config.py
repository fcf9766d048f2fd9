# -*- coding: utf-8 -*-
# The guide's config.py, as its Kubernetes ConfigMap (configmap.yaml, data: config.py) shows it,
# kept as written; run by tests/guide/test_guide_examples.py.
# fmt: off
# ruff: noqa
# mypy: ignore-errors
"""
配置文件
"""

# Kafka配置（嵌套格式，推荐）
KAFKA_CONFIG = {
    'consumer': {
        'bootstrap_servers': ['kafka-broker-1:9092', 'kafka-broker-2:9092', 'kafka-broker-3:9092'],
        'group_id': 'data_analysis_prod',
        'auto_offset_reset': 'latest',
        'enable_auto_commit': True,
        'max_poll_records': 500,
        'session_timeout_ms': 30000,
        'request_timeout_ms': 40000,
        'heartbeat_interval_ms': 3000,
    },
    'producer': {
        'bootstrap_servers': ['kafka-broker-1:9092', 'kafka-broker-2:9092', 'kafka-broker-3:9092'],
        'acks': 'all',
        'retries': 3,
        'max_in_flight_requests_per_connection': 5,
        'compression_type': 'gzip',
        'linger_ms': 10,
        'batch_size': 16384,
    }
}

# Topic配置（注意使用camelCase字段名）
TOPIC_DETAIL = {
    'SCHEDULE-STATION-PARAM': {
        'fields': ['stationId', 'stationTemp', 'lat', 'lng', ...],
        'frequency': '新建站或配置更改时',
        'modules': ['load_prediction', 'operation_optimization'],
        'window_size': 1
    },
    # 其他topic配置...
}

# 模块依赖配置
MODULE_DEPENDENCIES = {
    'operation_optimization': ['load_prediction'],
    'electricity_price': ['pv_prediction', 'evaluation_model', 'SOH_model'],
    # 其他依赖配置...
}

# 模块输出topic映射
MODULE_OUTPUT_TOPICS = {
    'load_prediction': 'MODULE-OUTPUT-LOAD-PREDICTION',
    'operation_optimization': 'MODULE-OUTPUT-OPERATION-OPTIMIZATION',
    # 其他模块...
}
