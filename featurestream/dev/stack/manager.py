"""The stack's public API, called by `featurestream stack ...`: up, down, status, env.

`up` is idempotent: a healthy service is left alone, a stale pid file is removed, and services
start concurrently (a service waits only for the ones it `uses`). `down` stops, by pid, only
what this state directory's pid files name.
"""

from __future__ import annotations

import fcntl
import logging
import shlex
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from featurestream.dev.stack import process
from featurestream.dev.stack.config import StackConfig
from featurestream.dev.stack.errors import PortInUseError, ServiceStartError, StackConfigError, StackError
from featurestream.dev.stack.services import ALL_SERVICE_NAMES, SERVICE_NAMES, Service, ServiceStatus, build

log = logging.getLogger(__name__)

__all__ = [
    "SERVICE_NAMES", "ServiceStatus", "StartReport",
    "down", "env", "format_env", "format_status", "start_reports", "status", "up",
]


@dataclass(frozen=True)
class StartReport:
    """What `up` did for one service, with the seconds it took (for cold/warm start figures)."""

    name: str
    action: str  # "started" or "already running"
    seconds: float


def _select(services: Sequence[str] | None, config: StackConfig | None = None) -> list[str]:
    """The requested names in start order; when none are named, the default services and the
    optional ones that run (so `down` stops them and `status` shows them)."""
    if not services:
        if config is None:
            return list(SERVICE_NAMES)
        every = build(config)
        return [n for n in ALL_SERVICE_NAMES if n in SERVICE_NAMES or _running(every[n]) is not None]
    unknown = [s for s in services if s not in ALL_SERVICE_NAMES]
    if unknown:
        raise StackConfigError(
            f"unknown service {', '.join(unknown)}; choose from {', '.join(ALL_SERVICE_NAMES)}"
        )
    return [name for name in ALL_SERVICE_NAMES if name in services]


def _running(service: Service) -> process.PidRecord | None:
    """The live process named by the service's pid file; a stale pid file is removed."""
    record = process.read_pid_file(service.pid_path)
    if record is None:
        return None
    if process.is_running(record):
        return record
    log.info("%s: removing stale pid file (pid %s is gone)", service.name, record.pid)
    service.pid_path.unlink(missing_ok=True)
    return None


def _status_of(service: Service) -> ServiceStatus:
    record = _running(service)
    return ServiceStatus(
        name=service.name,
        port=service.port,
        pid=record.pid if record else None,
        healthy=record is not None and service.healthy(),
        endpoint=service.endpoint(),
        log_path=service.log_path,
    )


def _start_one(service: Service, waits_for: list[Future[StartReport]]) -> StartReport:
    began = time.monotonic()
    for dependency in waits_for:
        dependency.result()
    record = _running(service)
    if record is not None:
        if service.healthy():
            return StartReport(service.name, "already running", time.monotonic() - began)
        # Ours but not answering (still booting, or hung): give it the normal start window.
        _await_health(service, record)
        return StartReport(service.name, "already running", time.monotonic() - began)
    service.check_prerequisites()
    busy = [port for port in service.listen_ports() if process.port_open(port)]
    if busy:
        raise PortInUseError(
            f"{service.name}: port {', '.join(map(str, busy))} on 127.0.0.1 is taken by a process "
            f"this stack ({service.config.state_dir}) did not start; set "
            f"FEATURESTREAM_{service.name.upper().replace('-', '_')}_PORT or stop that process"
        )
    service.dir.mkdir(parents=True, exist_ok=True)
    record = service.launch()
    try:
        _await_health(service, record)
        service.after_healthy()
    except StackError:
        # Leave nothing half-started behind: the log keeps the evidence.
        service.stop(record)
        service.pid_path.unlink(missing_ok=True)
        raise
    seconds = time.monotonic() - began
    log.info("%s: healthy after %.1fs (pid %s)", service.name, seconds, record.pid)
    return StartReport(service.name, "started", seconds)


def _await_health(service: Service, record: process.PidRecord) -> None:
    try:
        process.wait_healthy(service.healthy, record=record, timeout=service.start_timeout)
    except process.HealthTimeoutError as exc:
        raise ServiceStartError(f"{service.name}: {exc}; see its log {service.log_path}") from exc
    if not process.is_running(record):
        # The answer came from someone else's server on that port, and ours died.
        raise ServiceStartError(
            f"{service.name}: pid {record.pid} exited while another process answers on its port; "
            f"see its log {service.log_path}"
        )


@contextmanager
def _locked(config: StackConfig) -> Iterator[None]:
    """One `up`/`down` at a time per state dir, so two callers never race on the pid files."""
    config.state_dir.mkdir(parents=True, exist_ok=True)
    with (config.state_dir / "stack.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def up(services: Sequence[str] | None = None, config: StackConfig | None = None) -> list[ServiceStatus]:
    """Start the named services (all by default) and wait until each is healthy.

    Raises the first StackError after every service has had its chance; services that did
    start keep running (`down` stops them).
    """
    start_reports(services, config)
    return status(services, config)


def start_reports(
    services: Sequence[str] | None = None, config: StackConfig | None = None
) -> list[StartReport]:
    """`up`, returning what was done per service and how long it took."""
    cfg = config or StackConfig.from_env()
    names = _select(services)
    every = build(cfg)
    futures: dict[str, Future[StartReport]] = {}
    with _locked(cfg), ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="stack-up") as pool:
        for name in names:
            service = every[name]
            waits = [futures[u] for u in service.uses if u in futures]
            futures[name] = pool.submit(_start_one, service, waits)
    reports: list[StartReport] = []
    errors: list[StackError] = []
    for name, future in futures.items():
        try:
            reports.append(future.result())
        except StackError as exc:
            errors.append(exc)
        except Exception as exc:  # a bug or an OS error in one service must not hide the others
            errors.append(ServiceStartError(f"{name}: {type(exc).__name__}: {exc}"))
    if errors:
        if len(errors) == 1:
            raise errors[0]
        first = errors[0]
        raise type(first)("; ".join(str(e) for e in errors)) from first
    return reports


def down(services: Sequence[str] | None = None, config: StackConfig | None = None) -> list[ServiceStatus]:
    """Stop the named services (all by default), dependents first, by the pids this stack wrote."""
    cfg = config or StackConfig.from_env()
    every = build(cfg)
    if not cfg.state_dir.is_dir():
        return status(services, cfg)  # nothing was ever started from here
    with _locked(cfg):
        for name in reversed(_select(services, cfg)):
            service = every[name]
            record = _running(service)
            if record is None:
                continue
            log.info("%s: stopping pid %s", name, record.pid)
            service.stop(record)
            if process.is_running(record):
                raise StackError(f"{name}: pid {record.pid} is still running after SIGKILL")
            service.pid_path.unlink(missing_ok=True)
    return status(services, cfg)


def status(services: Sequence[str] | None = None, config: StackConfig | None = None) -> list[ServiceStatus]:
    """Port, pid and a live health check of each named service (all by default)."""
    cfg = config or StackConfig.from_env()
    every = build(cfg)
    return [_status_of(every[name]) for name in _select(services, cfg)]


def env(config: StackConfig | None = None) -> dict[str, str]:
    """Client settings for the whole stack: endpoints, Kafka bootstrap, JDBC, dummy AWS creds."""
    cfg = config or StackConfig.from_env()
    exports: dict[str, str] = {}
    for service in build(cfg).values():
        # An optional service's endpoint only while it runs: a batch job would push to a dead gateway.
        if not service.optional or _running(service) is not None:
            exports.update(service.env())
    exports.update(cfg.aws_env())
    exports["FEATURESTREAM_STATE_DIR"] = str(cfg.state_dir)
    return exports


def format_status(rows: Sequence[ServiceStatus]) -> str:
    """A plain table: service, port, pid, healthy, endpoint, log."""
    header = ("SERVICE", "PORT", "PID", "HEALTHY", "ENDPOINT", "LOG")
    table = [header] + [
        (r.name, str(r.port), str(r.pid) if r.pid else "-", "yes" if r.healthy else "no", r.endpoint,
         str(r.log_path))
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
             for row in table]
    return "\n".join(line.rstrip() for line in lines)


def format_env(exports: dict[str, str]) -> str:
    """`export K=V` lines, values shell-quoted."""
    return "\n".join(f"export {key}={shlex.quote(value)}" for key, value in sorted(exports.items()))
