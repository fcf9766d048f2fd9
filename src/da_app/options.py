"""What one service instance runs with: its constructor arguments resolved against the settings.

``resolve_options`` is the one place where an argument wins over the ``service`` section (and
the ``service`` section over the built-in default). The result is a frozen ``ServiceOptions``
that the container (``da_app.containers``) reads to build the engine, the clients, the runner
and the servers; the services read it for their public attributes.
"""

from __future__ import annotations

from typing import get_args

import attrs

from da_app.settings import AdapterName, Settings
from da_core.errors import ConfigError

DEFAULT_MODULE = "load_prediction"
DEFAULT_GROUP = "data_analysis_group"

ADAPTERS: tuple[str, ...] = get_args(AdapterName)
"""The adapter names a service accepts (``service.adapter`` or ``adapter=``)."""


@attrs.frozen
class ServerPlan:
    """Where the health and metrics endpoints listen; a port of 0 disables that endpoint.

    When both ports are equal (and non-zero) one listener on ``health_host`` serves both."""

    health_host: str = "127.0.0.1"
    health_port: int = 0
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0

    @property
    def shared(self) -> bool:
        """One listener serves both endpoints."""
        return bool(self.health_port) and self.health_port == self.metrics_port


@attrs.frozen
class ServiceOptions:
    """A service's resolved knobs. Times are seconds; ``asynchronous`` names the service kind
    (the container refuses clients of the other kind)."""

    module_name: str
    adapter: str
    asynchronous: bool
    group_id: str
    auto_offset_reset: str
    max_workers: int
    max_concurrency: int
    poll_timeout: float
    max_poll_records: int
    multi_consumer_mode: bool
    drain_timeout: float
    station_routing: str
    shutdown_timeout: float = 20.0
    broker: str = "the broker"
    """How log lines and ``/ready`` name the broker: its bootstrap servers."""
    servers: ServerPlan = ServerPlan()
    dead_letter_max_attempts: int = 10
    callback_timeout: float = 60.0
    """Seconds a station run may take (0: no limit)."""


def resolve_options(
    settings: Settings,
    *,
    asynchronous: bool,
    module_name: str | None = None,
    adapter: str | None = None,
    group_id: str | None = None,
    auto_offset_reset: str | None = None,
    max_workers: int | None = None,
    max_concurrency: int | None = None,
    poll_timeout: float | None = None,
    drain_timeout: float = 10.0,
    multi_consumer_mode: bool | None = None,
    station_routing: str | None = None,
    health_port: int | None = None,
    metrics_port: int | None = None,
) -> ServiceOptions:
    """Arguments first, then the settings, then the defaults. Raises ``ConfigError`` for an
    unknown adapter name (the settings file's is checked when it is loaded)."""
    svc = settings.service
    consumer = settings.kafka.consumer
    module = module_name or svc.module_name or DEFAULT_MODULE
    chosen = adapter or settings.resolve_adapter(asynchronous=asynchronous)
    if chosen not in ADAPTERS:
        raise ConfigError(
            f"adapter {chosen!r} is unknown; use one of: " + ", ".join(sorted(ADAPTERS))
        )
    hp = svc.health_port if health_port is None else health_port
    mp = svc.metrics_port if metrics_port is None else metrics_port
    return ServiceOptions(
        module_name=module,
        adapter=chosen,
        asynchronous=asynchronous,
        group_id=group_id or str(consumer.get("group_id") or DEFAULT_GROUP),
        auto_offset_reset=auto_offset_reset or str(consumer.get("auto_offset_reset") or "latest"),
        max_workers=max_workers or svc.max_workers,
        max_concurrency=max_concurrency or svc.max_concurrency,
        poll_timeout=poll_timeout if poll_timeout is not None else svc.poll_timeout_seconds,
        max_poll_records=int(consumer.get("max_poll_records") or svc.max_poll_records),
        multi_consumer_mode=(
            multi_consumer_mode
            if multi_consumer_mode is not None
            else settings.multi_consumer(module)
        ),
        drain_timeout=drain_timeout,
        station_routing=station_routing or settings.routing_mode(chosen),
        dead_letter_max_attempts=svc.dead_letter_max_attempts,
        callback_timeout=svc.callback_timeout_seconds,
        shutdown_timeout=svc.shutdown_timeout_seconds,
        broker=",".join(settings.kafka.bootstrap_servers) or chosen,
        servers=ServerPlan(
            health_host=svc.health_host,
            health_port=hp,
            metrics_host=svc.metrics_host,
            metrics_port=mp if svc.metrics_enabled else 0,
        ),
    )
