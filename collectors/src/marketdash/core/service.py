"""The shell every long-running collector runs in: the market feeder, the news feeder, the alert engine.

`run_service` is a service's whole `__main__`: settings from the environment only (a refused value is one
log line naming its variable, then exit 2), JSON logs at the service's `LOG_LEVEL`, SIGTERM and SIGINT
turned into one stop event, then `serve`. `serve` is the lifecycle, the same in production, tests and
benchmarks, in this order so that nothing a source delivered is lost on a stop:

1. /metrics and /healthz are served from the service's registry and `health()`;
2. the service's InfluxDB writer starts (if it has one);
3. `service.run(stop)` works until `stop` is set; if it raises instead, the error is logged and the
   process exits 1, for Docker to restart it;
4. `service.close()` releases what the service opened (sockets, files, database connections);
5. the writer writes what is still queued, for at most WRITER_FLUSH_S, and closes, even when the close
   before it failed;
6. /metrics and /healthz stop.

The API runs in uvicorn, which owns its signals and workers and serves its own /metrics and /healthz; it
shares the settings loading and the logs (`load_settings`, `configure_logging`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Protocol, TypeVar

from prometheus_client import CollectorRegistry
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsError

from marketdash.core.influx import InfluxSettings, InfluxWriter
from marketdash.core.logging import configure_logging
from marketdash.core.metrics import serve_metrics

log = logging.getLogger(__name__)

# What a stopping service's writer may take to write its queue (Docker's stop grace is 10 s by default:
# the sources' own stop comes first).
WRITER_FLUSH_S = 8.0

T = TypeVar("T", bound=BaseSettings)


Port = Annotated[int, Field(ge=1, le=65535)]


class ServiceSettings(BaseSettings):
    """What every service's settings hold, under its own prefix (MARKETDASH_NEWS_LOG_LEVEL, …); each
    service gives its own `metrics_port`."""

    # Inside its container, reached by Prometheus over the stack's internal network only.
    metrics_host: str = "0.0.0.0"  # noqa: S104
    metrics_port: Port
    log_level: str = "INFO"

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, level: str) -> str:
        if level.upper() not in logging.getLevelNamesMapping():
            raise ValueError(f"{level!r} is not a log level: DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level.upper()


S = TypeVar("S", bound=ServiceSettings)


class Service(Protocol):
    @property
    def registry(self) -> CollectorRegistry: ...

    @property
    def writer(self) -> InfluxWriter | None: ...

    def health(self) -> tuple[bool, dict[str, Any]]: ...

    async def run(self, stop: asyncio.Event) -> None: ...

    async def close(self) -> None: ...


async def serve(service: Service, settings: ServiceSettings, stop: asyncio.Event) -> None:
    # Each step's undoing is pushed as it starts; they run in the reverse order, every one of them even if
    # another raised.
    async with contextlib.AsyncExitStack() as undo:
        runner = await serve_metrics(
            service.registry, service.health, settings.metrics_host, settings.metrics_port
        )
        undo.push_async_callback(runner.cleanup)
        writer = service.writer
        if writer is not None:
            await writer.start()
            undo.push_async_callback(writer.close, WRITER_FLUSH_S)
        undo.push_async_callback(service.close)
        await service.run(stop)


class PartEndedError(RuntimeError):
    """A part of a service ended before the service was stopped."""


async def until_stopped(stop: asyncio.Event, tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Let `tasks`, the parts of a service that each run until it stops, run until `stop` is set; then
    cancel them and wait for them to end. A part that ends first, by an error or not, stops the others and
    is raised (PartEndedError if it had no error): a service does not run on without one of its parts.
    Other errors, of parts failing at the same moment or while being cancelled, are logged."""
    stopping = asyncio.create_task(stop.wait(), name="stop")
    pending: set[asyncio.Task[Any]] = {stopping, *tasks}
    failures: list[BaseException] = []
    try:
        while stopping in pending and not failures:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done - {stopping}:
                if task.cancelled():
                    failures.append(PartEndedError(f"{task.get_name()} was cancelled"))
                elif task.exception() is not None:
                    failures.append(task.exception())  # type: ignore[arg-type]
                elif not stop.is_set():
                    failures.append(PartEndedError(f"{task.get_name()} ended"))
    finally:
        for task in pending:
            task.cancel()
        for ended in await asyncio.gather(*pending, return_exceptions=True):
            if isinstance(ended, BaseException) and not isinstance(ended, asyncio.CancelledError):
                log.error("service part failed while stopping", exc_info=ended)
    if failures:
        for other in failures[1:]:
            log.error("service part failed", exc_info=other)
        raise failures[0]


def load_settings(settings_type: type[T]) -> T:
    """The settings from the environment; a refused value is logged with the variable that sets it and the
    process exits 2 (a typo in an exchange id, a port that is not a number)."""
    try:
        return settings_type()
    except ValidationError as error:
        prefix = str(settings_type.model_config.get("env_prefix", ""))
        for problem in error.errors(include_input=False, include_url=False):
            field = str(problem["loc"][0]).upper() if problem["loc"] else ""
            log.error("setting refused", extra={"setting": f"{prefix}{field}", "error": problem["msg"]})
    except SettingsError as error:  # a value that is not even JSON
        log.error("setting refused", extra={"error": str(error)})
    raise SystemExit(2)


def run_service(
    module: str,
    name: str,
    settings_type: type[S],
    build: Callable[[S, InfluxSettings], Service],
    description: str,
) -> None:
    """A service's `__main__`: `python -m <module> --help` prints `description`; `name` is the logs'
    `service` field."""
    argparse.ArgumentParser(prog=f"python -m {module}", description=description).parse_args()
    configure_logging(name)
    settings = load_settings(settings_type)
    influx = load_settings(InfluxSettings)
    configure_logging(name, settings.log_level)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        service = build(settings, influx)
        log.info("service started", extra={"metrics_port": settings.metrics_port})
        await serve(service, settings, stop)
        log.info("service stopped")

    try:
        asyncio.run(main())
    except Exception:
        log.exception("service failed")
        raise SystemExit(1) from None
