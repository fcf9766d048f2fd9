# The guide's performance settings (部署指南 §2 性能相关配置), kept as written; the test passes
# them to the services.
# fmt: off
# ruff: noqa
# mypy: ignore-errors
# 同步服务：线程池大小
max_workers = 32  # 根据场站数量和CPU核心数调整

# 数据过期时间
data_expire_seconds = 600  # 10分钟，根据数据特点调整

# 异步服务：并发任务数
# 由asyncio自动管理，但需注意系统资源限制
