#!/usr/bin/env python3
"""Fetch and run a real single-node Apache Kafka 4.x broker (KRaft) for integration tests.

Standard library only. Usage::

    python scripts/kafka_broker.py fetch    # download the broker jars into the cache, once
    python scripts/kafka_broker.py start    # start in the background; last stdout line: HOST:PORT
    python scripts/kafka_broker.py status   # exit 0 when running, 3 when not
    python scripts/kafka_broker.py stop     # stop exactly the broker that `start` started
    python scripts/kafka_broker.py run      # run in the foreground until Ctrl-C

The jars of ``org.apache.kafka:kafka_2.13`` (and a log4j2 binding) come from Maven Central
through ``mvn dependency:copy-dependencies`` into a cache outside the repository:
``$DA_KAFKA_CACHE`` or ``~/.cache/data-analysis/kafka-<version>``. A marker file written
after a successful fetch makes later runs reuse it.

Every ``start`` formats KRaft storage in a fresh temporary directory and runs one combined
broker+controller on free ports of 127.0.0.1. ``stop`` sends SIGTERM (then SIGKILL) to the
recorded PID only, after checking that this PID still runs our broker, and deletes the
temporary directory. Needs Java 17+ (``$JAVA_HOME/bin/java`` or ``java`` on PATH) and Maven
(``$MVN`` or ``mvn`` on PATH) for the first fetch.

The same functions are importable (see ``tests/integration/kafka_fixtures.py``).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

KAFKA_VERSION = "4.4.0"
SCALA_BINARY_VERSION = "2.13"
# Kafka 4.4 logs through slf4j 1.7 (slf4j-api 1.7.36) and ships log4j2 2.25.5; bind the two.
LOG4J_VERSION = "2.25.5"
DEPENDENCY_PLUGIN_VERSION = "3.8.1"
MIN_JAVA = 17

DEFAULT_START_TIMEOUT = 90.0
DEFAULT_STOP_TIMEOUT = 30.0
DEFAULT_HEAP = "384m"
FETCH_TIMEOUT = 900.0
FORMAT_TIMEOUT = 120.0
PORT_ATTEMPTS = 3

MARKER_NAME = ".fetched.json"
STATE_NAME = "broker-state.json"
TMP_PREFIX = "da-kafka-"
MAIN_CLASS = "kafka.Kafka"
STARTED_MARKERS = ("Kafka Server started", "started (kafka.server.KafkaRaftServer)")


class BrokerError(RuntimeError):
    """The broker could not be fetched, started or stopped."""


class BrokerUnavailable(BrokerError):
    """A prerequisite (Java 17+, Maven, the jars) is missing on this machine."""


# --------------------------------------------------------------------------------------------
# Locations, Java, Maven


def default_cache_dir(version: str = KAFKA_VERSION) -> Path:
    override = os.environ.get("DA_KAFKA_CACHE")
    if override:
        return Path(override).expanduser()
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "data-analysis" / f"kafka-{version}"


def default_state_file(cache_dir: Path | None = None) -> Path:
    override = os.environ.get("DA_KAFKA_STATE")
    if override:
        return Path(override).expanduser()
    return (cache_dir or default_cache_dir()) / STATE_NAME


def _log(message: str) -> None:
    print(f"[kafka-broker] {message}", file=sys.stderr, flush=True)


def find_java() -> str:
    """Return the java executable ($JAVA_HOME/bin/java, else PATH) after checking it is 17+."""
    java_home = os.environ.get("JAVA_HOME")
    java: str | None = None
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            java = str(candidate)
    if java is None:
        java = shutil.which("java")
    if java is None:
        raise BrokerUnavailable("no Java found (set JAVA_HOME or put java 17+ on PATH)")
    major = java_major_version(java)
    if major < MIN_JAVA:
        raise BrokerUnavailable(f"{java} is Java {major}; Kafka 4 needs Java {MIN_JAVA}+")
    return java


def java_major_version(java: str) -> int:
    try:
        out = subprocess.run(
            [java, "-XshowSettings:properties", "-version"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BrokerUnavailable(f"cannot run {java}: {exc}") from exc
    match = re.search(r"java\.specification\.version = (\S+)", out.stderr + out.stdout)
    if match is None:
        raise BrokerUnavailable(f"cannot tell the version of {java}: {out.stderr[-500:]}")
    spec = match.group(1)
    return int(spec.split(".")[1]) if spec.startswith("1.") else int(spec.split(".")[0])


def find_maven() -> str:
    mvn = os.environ.get("MVN") or shutil.which("mvn")
    if not mvn:
        raise BrokerUnavailable("Maven (mvn) is needed to fetch the Kafka jars; not on PATH")
    return mvn


# --------------------------------------------------------------------------------------------
# Fetch


def _pom(version: str) -> str:
    def dep(group: str, artifact: str, ver: str) -> str:
        return (
            "    <dependency>\n"
            f"      <groupId>{group}</groupId>\n"
            f"      <artifactId>{artifact}</artifactId>\n"
            f"      <version>{ver}</version>\n"
            "    </dependency>\n"
        )

    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<project xmlns="http://maven.apache.org/POM/4.0.0"\n'
        '         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"\n'
        '         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 '
        'https://maven.apache.org/xsd/maven-4.0.0.xsd">\n'
        "  <modelVersion>4.0.0</modelVersion>\n"
        "  <groupId>local.data-analysis</groupId>\n"
        "  <artifactId>kafka-broker-runtime</artifactId>\n"
        f"  <version>{version}</version>\n"
        "  <packaging>pom</packaging>\n"
        "  <dependencies>\n"
        + dep("org.apache.kafka", f"kafka_{SCALA_BINARY_VERSION}", version)
        + dep("org.apache.logging.log4j", "log4j-api", LOG4J_VERSION)
        + dep("org.apache.logging.log4j", "log4j-core", LOG4J_VERSION)
        + dep("org.apache.logging.log4j", "log4j-slf4j-impl", LOG4J_VERSION)
        + "  </dependencies>\n"
        "  <build>\n"
        "    <plugins>\n"
        "      <plugin>\n"
        "        <groupId>org.apache.maven.plugins</groupId>\n"
        "        <artifactId>maven-dependency-plugin</artifactId>\n"
        f"        <version>{DEPENDENCY_PLUGIN_VERSION}</version>\n"
        "      </plugin>\n"
        "    </plugins>\n"
        "  </build>\n"
        "</project>\n"
    )


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (so parallel test sessions fetch only once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            yield
            return
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _cached_lib(cache_dir: Path, version: str) -> Path | None:
    marker = cache_dir / MARKER_NAME
    lib = cache_dir / "lib"
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != version:
        return None
    if data.get("pom_sha256") != _sha256(_pom(version)):  # pinned versions changed
        return None
    jars = data.get("jars")
    if not isinstance(jars, list) or not jars:
        return None
    if all((lib / str(name)).is_file() for name in jars):
        return lib
    return None


def ensure_fetched(
    version: str = KAFKA_VERSION, cache_dir: Path | None = None, *, force: bool = False
) -> Path:
    """Return the directory holding the broker's runtime jars, fetching them when needed."""
    cache_dir = cache_dir or default_cache_dir(version)
    if not force:
        lib = _cached_lib(cache_dir, version)
        if lib is not None:
            return lib
    with _file_lock(cache_dir / ".fetch.lock"):
        if not force:
            lib = _cached_lib(cache_dir, version)
            if lib is not None:  # fetched by another process meanwhile
                return lib
        mvn = find_maven()
        (cache_dir / MARKER_NAME).unlink(missing_ok=True)
        staging = cache_dir / "lib.partial"
        shutil.rmtree(staging, ignore_errors=True)
        pom = cache_dir / "pom.xml"
        pom.write_text(_pom(version))
        _log(f"fetching Apache Kafka {version} jars through Maven into {cache_dir}")
        started = time.monotonic()
        cmd = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ]
        try:
            result = subprocess.run(
                cmd,
                cwd=cache_dir,
                capture_output=True,
                text=True,
                timeout=FETCH_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BrokerError(f"mvn did not finish in {FETCH_TIMEOUT:.0f} s") from exc
        jars = sorted(p.name for p in staging.glob("*.jar")) if staging.is_dir() else []
        if result.returncode != 0 or not any(j.startswith("kafka_") for j in jars):
            tail = (result.stdout + result.stderr)[-3000:]
            raise BrokerError(f"mvn failed (exit {result.returncode}): {' '.join(cmd)}\n{tail}")
        lib = cache_dir / "lib"
        shutil.rmtree(lib, ignore_errors=True)
        staging.rename(lib)
        marker = {
            "version": version,
            "pom_sha256": _sha256(_pom(version)),
            "jars": jars,
            "fetched_at": time.time(),
        }
        (cache_dir / MARKER_NAME).write_text(json.dumps(marker, indent=1) + "\n")
        _log(f"fetched {len(jars)} jars in {time.monotonic() - started:.1f} s")
        return lib


# --------------------------------------------------------------------------------------------
# Configuration


def free_ports(count: int) -> list[int]:
    """Ports that 127.0.0.1 had free a moment ago (bound to port 0 together, then released)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def random_cluster_id() -> str:
    """A Kafka cluster id: a UUID as 22 characters of URL-safe base64, not starting with '-'."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not text.startswith("-"):
            return text


def server_properties(
    data_dir: Path, port: int, controller_port: int, overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "log.dirs": str(data_dir),
        "num.partitions": "3",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "auto.create.topics.enable": "true",
        "delete.topic.enable": "true",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.recovery.threads.per.data.dir": "1",
        # The log cleaner (needed for compacted internal topics) takes 128 MiB by default.
        "log.cleaner.dedupe.buffer.size": str(8 * 1024 * 1024),
    }
    props.update(overrides or {})
    return props


def _write_properties(path: Path, props: Mapping[str, str]) -> None:
    lines = [f"{key}={value}" for key, value in props.items()]
    path.write_text("# written by scripts/kafka_broker.py\n" + "\n".join(lines) + "\n")


def _log4j2_properties(log_file: Path) -> str:
    return (
        "status = warn\n"
        "name = da-kafka\n"
        "appender.file.type = File\n"
        "appender.file.name = FILE\n"
        f"appender.file.fileName = {log_file}\n"
        "appender.file.layout.type = PatternLayout\n"
        "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
        "rootLogger.level = INFO\n"
        "rootLogger.appenderRefs = file\n"
        "rootLogger.appenderRef.file.ref = FILE\n"
        "logger.state.name = state.change.logger\n"
        "logger.state.level = WARN\n"
        "logger.request.name = kafka.request.logger\n"
        "logger.request.level = WARN\n"
    )


def java_command(
    java: str, lib: Path, tmp_dir: Path, main_class: str, args: Sequence[str], heap: str
) -> list[str]:
    return [
        java,
        f"-Xmx{heap}",
        "-Xss1m",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:InitiatingHeapOccupancyPercent=35",
        "-XX:+ExplicitGCInvokesConcurrent",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={tmp_dir / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={tmp_dir}",
        "-cp",
        str(lib / "*"),
        main_class,
        *args,
    ]


# --------------------------------------------------------------------------------------------
# Readiness


def api_versions_ok(bootstrap: str, timeout: float = 1.0) -> bool:
    """Send an ApiVersions v0 request over plain TCP; True when the broker answers it."""
    host, _, port = bootstrap.rpartition(":")
    client_id = b"da-kafka-probe"
    correlation = 7
    body = struct.pack(">hhih", 18, 0, correlation, len(client_id)) + client_id
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(struct.pack(">i", len(body)) + body)
            head = _recv_exact(sock, 4)
            (size,) = struct.unpack(">i", head)
            if size < 6 or size > 1 << 20:
                return False
            payload = _recv_exact(sock, size)
    except OSError:
        return False
    got_correlation, error_code = struct.unpack(">ih", payload[:6])
    return bool(got_correlation == correlation and error_code == 0)


def _recv_exact(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


def metadata_ok(bootstrap: str, timeout: float = 5.0) -> bool | None:
    """A metadata request through confluent_kafka when importable (None when it is not)."""
    try:
        from confluent_kafka.admin import AdminClient
    except ImportError:
        return None
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    try:
        metadata = admin.list_topics(timeout=timeout)
    except Exception:
        return False
    return bool(metadata.brokers)


def _log_says_started(tmp_dir: Path) -> bool:
    text = _read_tail(tmp_dir / "kafka.log", 1 << 20)
    return any(marker in text for marker in STARTED_MARKERS)


def _read_tail(path: Path, limit: int) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def log_tail(tmp_dir: Path, lines: int = 40) -> str:
    parts = []
    for name in ("stdout.log", "kafka.log"):
        text = _read_tail(tmp_dir / name, 64 * 1024)
        if text.strip():
            parts.append(
                f"--- {tmp_dir / name} (tail) ---\n" + "\n".join(text.splitlines()[-lines:])
            )
    return "\n".join(parts) or "(no broker output)"


def wait_ready(
    process: subprocess.Popen[bytes], bootstrap: str, tmp_dir: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        code = process.poll()
        if code is not None:
            raise _StartFailed(code, log_tail(tmp_dir))
        if api_versions_ok(bootstrap):
            verdict = metadata_ok(bootstrap)
            if verdict is None:
                verdict = _log_says_started(tmp_dir)
            if verdict:
                return
        if time.monotonic() > deadline:
            raise BrokerError(
                f"broker pid {process.pid} did not answer on {bootstrap} within "
                f"{timeout:.0f} s\n{log_tail(tmp_dir)}"
            )
        time.sleep(0.25)


class _StartFailed(BrokerError):
    def __init__(self, code: int, tail: str) -> None:
        super().__init__(f"broker exited with code {code} while starting\n{tail}")
        self.tail = tail


# --------------------------------------------------------------------------------------------
# Processes


@dataclass(frozen=True)
class BrokerState:
    pid: int
    bootstrap: str
    controller: str
    tmp_dir: str
    version: str
    java: str
    started_at: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> BrokerState:
        data: Any = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("state file is not a JSON object")
        return cls(
            pid=int(data["pid"]),
            bootstrap=str(data["bootstrap"]),
            controller=str(data["controller"]),
            tmp_dir=str(data["tmp_dir"]),
            version=str(data["version"]),
            java=str(data["java"]),
            started_at=float(data["started_at"]),
        )


class RunningBroker:
    """A broker started by this module; `stop()` is idempotent. `halt()` stops the process
    but keeps its directory (data, configuration, ports); `resume()` starts it again on the
    same port and data directory (a broker restart, for outage tests)."""

    def __init__(
        self,
        state: BrokerState,
        process: subprocess.Popen[bytes] | None,
        relaunch: Any = None,
    ) -> None:
        self.state = state
        self.process = process
        self._stopped = False
        self._relaunch = relaunch

    def halt(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """Stop the broker process (SIGTERM, by PID), keeping its data directory."""
        stop_broker(self.state, timeout=timeout, process=self.process, remove_tmp=False)

    def resume(self, timeout: float = DEFAULT_START_TIMEOUT) -> None:
        """Start the halted broker again from its directory; wait until it answers."""
        if self._relaunch is None:
            raise BrokerError("this broker cannot be restarted (not started by start_broker)")
        process = self._relaunch()
        self.process = process
        self.state = BrokerState(**{**asdict(self.state), "pid": process.pid})
        try:
            wait_ready(process, self.state.bootstrap, Path(self.state.tmp_dir), timeout)
        except BaseException:
            stop_broker(self.state, timeout=10.0, process=process, remove_tmp=False)
            raise

    @property
    def bootstrap(self) -> str:
        return self.state.bootstrap

    @property
    def pid(self) -> int:
        return self.state.pid

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        if self._stopped:
            return
        stop_broker(self.state, timeout=timeout, process=self.process)
        self._stopped = True


def _cmdline(pid: int) -> list[str] | None:
    if Path("/proc/self").exists():
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]
    try:  # no /proc (macOS): ask ps
        out = subprocess.run(
            ["ps", "-o", "args=", "-p", str(pid)],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.split() if out.returncode == 0 and out.stdout.strip() else None


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def is_our_broker(state: BrokerState) -> bool:
    """True when state.pid is alive and still runs the broker of state.tmp_dir."""
    if _is_zombie(state.pid):
        return False
    args = _cmdline(state.pid)
    if not args:
        return False
    return MAIN_CLASS in args and any(state.tmp_dir in arg for arg in args)


def sweep_stale_dirs() -> None:
    """Delete temp dirs of earlier brokers that are gone (e.g. their session was killed)."""
    for path in Path(tempfile.gettempdir()).glob(TMP_PREFIX + "*"):
        try:
            pid = int((path / "broker.pid").read_text().strip())
        except (OSError, ValueError):
            continue  # not ours, or still being set up
        probe = BrokerState(pid, "", "", str(path), "", "", 0.0)
        if _owner_alive(path):
            continue  # halted by a live process that will resume it (outage tests)
        if not is_our_broker(probe):
            _log(f"removing {path} (its broker pid {pid} is gone)")
            _safe_rmtree(str(path))


def _owner_alive(path: Path) -> bool:
    """Whether the process that started the broker of ``path`` (``owner.pid``) still runs."""
    try:
        owner = int((path / "owner.pid").read_text().strip())
        os.kill(owner, 0)
    except (OSError, ValueError):
        return False
    return True


def _safe_rmtree(tmp_dir: str) -> None:
    path = Path(tmp_dir)
    if path.name.startswith(TMP_PREFIX) and (path / "server.properties").exists():
        shutil.rmtree(path, ignore_errors=True)


def stop_broker(
    state: BrokerState,
    *,
    timeout: float = DEFAULT_STOP_TIMEOUT,
    process: subprocess.Popen[bytes] | None = None,
    remove_tmp: bool = True,
) -> None:
    """SIGTERM the broker of `state` (SIGKILL after `timeout`), then delete its temp dir."""
    if process is not None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                _log(f"pid {process.pid} ignored SIGTERM for {timeout:.0f} s; SIGKILL")
                process.kill()
                process.wait(30)
    elif is_our_broker(state):
        _signal_and_wait(state, timeout)
    if remove_tmp:
        _safe_rmtree(state.tmp_dir)


def _signal_and_wait(state: BrokerState, timeout: float) -> None:
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 30.0)):
        if not is_our_broker(state):
            return
        if sig == signal.SIGKILL:
            _log(f"pid {state.pid} ignored SIGTERM for {timeout:.0f} s; SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.kill(state.pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not is_our_broker(state):
                return
            time.sleep(0.1)
    if is_our_broker(state):
        raise BrokerError(f"pid {state.pid} survived SIGKILL")


def _format_storage(java: str, lib: Path, tmp_dir: Path, props_file: Path, heap: str) -> None:
    cmd = java_command(
        java,
        lib,
        tmp_dir,
        "kafka.tools.StorageTool",
        ["format", "-t", random_cluster_id(), "-c", str(props_file)],
        heap,
    )
    try:
        result = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=FORMAT_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise BrokerError(f"kafka-storage format did not finish in {FORMAT_TIMEOUT:.0f} s") from exc
    if result.returncode != 0:
        raise BrokerError(
            f"kafka-storage format failed (exit {result.returncode}):\n"
            f"{result.stdout[-2000:]}{result.stderr[-2000:]}\n{log_tail(tmp_dir)}"
        )


def _stoppable() -> None:
    """In the broker's process before exec: SIGTERM back to its default. A parent that ignores
    SIGTERM (CI runners do, and children inherit it) would otherwise give a broker that the
    JVM lets ignore it: ``stop``/``halt`` would wait their whole timeout before SIGKILL, a
    halt would be a crash instead of a controlled shutdown, and ``die_with_parent``'s
    SIGTERM would never end it."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def start_broker(
    *,
    version: str = KAFKA_VERSION,
    cache_dir: Path | None = None,
    timeout: float = DEFAULT_START_TIMEOUT,
    heap: str = DEFAULT_HEAP,
    detach: bool = True,
    die_with_parent: bool = False,
    overrides: Mapping[str, str] | None = None,
    port: int | None = None,
) -> RunningBroker:
    """Fetch when needed, format storage in a new temp dir and start the broker; wait until it
    answers metadata requests. `detach` puts it in its own session (it outlives this process);
    `die_with_parent` (Linux, needs setpriv) makes it get SIGTERM when this process dies.
    `port`: listen on this port of 127.0.0.1 (else a free one)."""
    java = find_java()
    lib = ensure_fetched(version, cache_dir)
    sweep_stale_dirs()
    tmp_dir = Path(tempfile.mkdtemp(prefix=TMP_PREFIX))
    try:
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                return _start_once(
                    java,
                    lib,
                    tmp_dir,
                    version,
                    timeout,
                    heap,
                    detach,
                    die_with_parent,
                    overrides,
                    port,
                )
            except _StartFailed as exc:
                retry = "Address already in use" in exc.tail and port is None
                if not retry or attempt == PORT_ATTEMPTS:
                    raise
                _log("a port was taken meanwhile; retrying with new ports")
        raise AssertionError("unreachable")
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise


def _start_once(
    java: str,
    lib: Path,
    tmp_dir: Path,
    version: str,
    timeout: float,
    heap: str,
    detach: bool,
    die_with_parent: bool,
    overrides: Mapping[str, str] | None,
    given_port: int | None = None,
) -> RunningBroker:
    data_dir = tmp_dir / "data"
    shutil.rmtree(data_dir, ignore_errors=True)
    for name in ("kafka.log", "stdout.log"):
        (tmp_dir / name).unlink(missing_ok=True)
    port, controller_port = free_ports(2)
    if given_port is not None:
        port = given_port
        while controller_port == port:
            controller_port = free_ports(1)[0]
    props_file = tmp_dir / "server.properties"
    _write_properties(props_file, server_properties(data_dir, port, controller_port, overrides))
    (tmp_dir / "log4j2.properties").write_text(_log4j2_properties(tmp_dir / "kafka.log"))
    began = time.monotonic()
    _format_storage(java, lib, tmp_dir, props_file, "256m")
    formatted = time.monotonic()

    cmd = java_command(java, lib, tmp_dir, MAIN_CLASS, [str(props_file)], heap)
    setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
    if die_with_parent and setpriv:
        cmd = [setpriv, "--pdeathsig", "TERM", "--", *cmd]
    bootstrap = f"127.0.0.1:{port}"

    def launch() -> subprocess.Popen[bytes]:
        with (tmp_dir / "stdout.log").open("ab") as out:
            started = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=tmp_dir,
                start_new_session=detach,
                close_fds=True,
                preexec_fn=_stoppable,
            )
        (tmp_dir / "broker.pid").write_text(f"{started.pid}\n")
        (tmp_dir / "owner.pid").write_text(f"{os.getpid()}\n")
        return started

    process = launch()
    state = BrokerState(
        pid=process.pid,
        bootstrap=bootstrap,
        controller=f"127.0.0.1:{controller_port}",
        tmp_dir=str(tmp_dir),
        version=version,
        java=java,
        started_at=time.time(),
    )
    try:
        wait_ready(process, bootstrap, tmp_dir, timeout)
    except BaseException:
        stop_broker(state, timeout=10.0, process=process, remove_tmp=False)
        raise
    _log(
        f"storage formatted in {formatted - began:.1f} s, "
        f"broker ready on {bootstrap} after {time.monotonic() - formatted:.1f} s more"
    )
    return RunningBroker(state, process, launch)


# --------------------------------------------------------------------------------------------
# State file and command line


def read_state(path: Path) -> BrokerState | None:
    try:
        return BrokerState.from_json(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError) as exc:
        raise BrokerError(f"unreadable state file {path}: {exc}") from exc


def write_state(path: Path, state: BrokerState) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(state.to_json())
    partial.replace(path)


def _parse_overrides(items: Sequence[str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--override needs KEY=VALUE, got {item!r}")
        result[key.strip()] = value.strip()
    return result


def _cmd_fetch(args: argparse.Namespace) -> int:
    lib = ensure_fetched(KAFKA_VERSION, args.cache_dir, force=args.force)
    print(lib)
    return 0


def _cmd_start(args: argparse.Namespace) -> int:
    state_file: Path = args.state_file
    old = read_state(state_file)
    if old is not None:
        if is_our_broker(old):
            _log(f"already running: pid {old.pid} (stop it first to get a fresh broker)")
            print(old.bootstrap)
            return 0
        _log(f"removing stale state of pid {old.pid}")
        _safe_rmtree(old.tmp_dir)
        state_file.unlink(missing_ok=True)
    broker = start_broker(
        cache_dir=args.cache_dir,
        timeout=args.timeout,
        heap=args.heap,
        detach=True,
        overrides=_parse_overrides(args.override),
    )
    try:
        write_state(state_file, broker.state)
    except BaseException:
        broker.stop()
        raise
    _log(f"Kafka {KAFKA_VERSION} pid {broker.pid}, dir {broker.state.tmp_dir}")
    print(broker.bootstrap, flush=True)
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    state_file: Path = args.state_file
    state = read_state(state_file)
    if state is None:
        _log(f"no state file {state_file}: nothing to stop")
        return 0
    if is_our_broker(state):
        _log(f"stopping pid {state.pid}")
    else:
        _log(f"pid {state.pid} no longer runs our broker; cleaning up")
    stop_broker(state, timeout=args.timeout)
    state_file.unlink(missing_ok=True)
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    state = read_state(args.state_file)
    if state is None or not is_our_broker(state):
        print("stopped")
        return 3
    answering = "answering" if api_versions_ok(state.bootstrap) else "NOT answering"
    print(f"running pid={state.pid} bootstrap={state.bootstrap} dir={state.tmp_dir} {answering}")
    print(state.bootstrap)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    broker = start_broker(
        cache_dir=args.cache_dir,
        timeout=args.timeout,
        heap=args.heap,
        detach=False,
        die_with_parent=True,
        overrides=_parse_overrides(args.override),
    )
    process = broker.process
    assert process is not None
    state_file: Path = args.state_file
    write_state(state_file, broker.state)

    def _terminate(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    _log(f"Kafka {KAFKA_VERSION} pid {broker.pid}, dir {broker.state.tmp_dir}; Ctrl-C stops it")
    print(broker.bootstrap, flush=True)
    try:
        code = process.wait()
        _log(f"broker exited with code {code}")
        return code or 1
    except KeyboardInterrupt:
        return 0
    finally:
        broker.stop()
        state_file.unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="jar cache (default: $DA_KAFKA_CACHE or ~/.cache/data-analysis/kafka-VERSION)",
    )
    parser.add_argument(
        "--state-file",
        type=Path,
        default=None,
        help="where start records the broker (default: $DA_KAFKA_STATE or CACHE/"
        + STATE_NAME
        + ")",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch", help="download the jars into the cache (once)")
    fetch.add_argument("--force", action="store_true", help="fetch again even when cached")
    for name, text in (("start", "start in the background"), ("run", "run in the foreground")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--timeout", type=float, default=DEFAULT_START_TIMEOUT)
        cmd.add_argument("--heap", default=DEFAULT_HEAP, help="java -Xmx (default %(default)s)")
        cmd.add_argument(
            "--override", action="append", default=[], metavar="KEY=VALUE", help="broker config"
        )
    stop = sub.add_parser("stop", help="stop the broker that start started")
    stop.add_argument("--timeout", type=float, default=DEFAULT_STOP_TIMEOUT)
    sub.add_parser("status", help="exit 0 and print the bootstrap when running, else exit 3")
    args = parser.parse_args(argv)
    if args.state_file is None:
        args.state_file = default_state_file(args.cache_dir)
    handlers = {
        "fetch": _cmd_fetch,
        "start": _cmd_start,
        "stop": _cmd_stop,
        "status": _cmd_status,
        "run": _cmd_run,
    }
    try:
        return handlers[args.command](args)
    except BrokerUnavailable as exc:
        _log(f"unavailable: {exc}")
        return 2
    except BrokerError as exc:
        _log(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
