# The guide's health check (部署指南 监控和日志 §健康检查API示例), kept as written but for the
# fix marked "guide fix". It builds a new service rather than asking the running one (issue 13
# item 5), so as written it reports the health of a service that never started.
# fmt: off
# ruff: noqa
# mypy: ignore-errors
import time  # guide fix: the snippet calls time.time() without importing time


def health_check():
    """
    健康检查函数，可集成到监控系统
    """
    from d_a import DataAnalysisService
    
    service = DataAnalysisService()  # 获取服务实例
    
    # 获取服务状态
    service_status = service.get_service_status()
    station_status = service.get_station_status()
    
    health = {
        "status": "healthy" if service_status.get('main_thread_alive') else "unhealthy",
        "timestamp": time.time(),
        "service": {
            "main_thread": service_status.get('main_thread_alive', False),
            "consumer_alive": service_status.get('consumer_alive', False),
            "producer_alive": service_status.get('producer_alive', False),
            "station_count": service_status.get('station_count', 0)
        },
        "stations": {
            sid: {"running": info.get('running', False)}
            for sid, info in station_status.items()
        }
    }
    
    return health
