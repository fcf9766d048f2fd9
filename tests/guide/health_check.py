# The guide's health check (部署指南 监控和日志 §健康检查API示例), kept as written but for the
# fixes marked "guide fix". As written it built a new service rather than asking the running
# one (issue 13 item 5), so it reported the health of a service that never started; d_a's
# current_service() returns the running one (or d_a.health_check() does all of this).
# fmt: off
# ruff: noqa
# mypy: ignore-errors
import time  # guide fix: the snippet calls time.time() without importing time


def health_check():
    """
    健康检查函数，可集成到监控系统
    """
    from d_a import DataAnalysisService, current_service  # guide fix: current_service
    
    service = current_service() or DataAnalysisService()  # 获取服务实例  # guide fix: the running instance; DataAnalysisService() alone builds a new one that never started, so always "unhealthy"
    
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
