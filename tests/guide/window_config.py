# The guide's window configuration (部署指南 §2 窗口和补全配置), kept as written: a config.py
# of its own, loaded by tests/guide/test_guide_examples.py.
# fmt: off
# ruff: noqa
# mypy: ignore-errors
# Topic配置中设置窗口大小
TOPIC_DETAIL = {
    'SCHEDULE-STATION-REALTIME-DATA': {  # guide fix: REAL-STATION-DATA is no topic of the catalog (a placeholder); this is the real-time one
        'window_size': 5,  # 根据业务需求设置合适的窗口大小
        # ...
    },
    # ...
}

# 在服务初始化时设置补全策略
# 'zero': 补零（默认，适合累计值）
# 'linear': 线性插值（适合连续变化的数据）
# 'forward': 前向填充（适合状态数据）
# 'missing': 标记为缺失（适合需要明确区分缺失数据的场景）
