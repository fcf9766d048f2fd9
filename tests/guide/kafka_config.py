# The guide's Kafka and offset-commit configuration (部署指南 §2 Kafka配置), kept as written: a
# config.py of its own, loaded by tests/guide/test_guide_examples.py.
# fmt: off
# ruff: noqa
# mypy: ignore-errors
KAFKA_CONFIG = {
    'consumer': {
        'bootstrap_servers': ['kafka1:9092', 'kafka2:9092', 'kafka3:9092'],
        'group_id': 'data_analysis_group',
        'auto_offset_reset': 'latest',
        'enable_auto_commit': False,  # 关闭自动提交，使用手动offset管理
        'max_poll_records': 500,
        'session_timeout_ms': 30000,
        'request_timeout_ms': 40000,
        'heartbeat_interval_ms': 3000,
    },
    'producer': {
        'bootstrap_servers': ['kafka1:9092', 'kafka2:9092', 'kafka3:9092'],
        'acks': 'all',  # 生产环境建议使用'all'保证数据可靠性
        'retries': 3,
        'max_in_flight_requests_per_connection': 5,
        'compression_type': 'gzip',  # 启用压缩节省网络带宽
        'linger_ms': 10,  # 批量发送延迟，提高吞吐量
        'batch_size': 16384,  # 批量大小
    }
}

# Offset管理配置（v1.1新增）
OFFSET_COMMIT_CONFIG = {
    'commit_interval_seconds': 5.0,  # 定时提交间隔（秒）
    'commit_batch_size': 100,        # 累积消息数提交阈值
    'max_commit_retries': 3,         # 提交失败重试次数
    'commit_retry_delay': 1.0,       # 重试延迟（秒）
}
