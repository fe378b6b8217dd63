"""Real parts for integration tests: the embedded Kafka-protocol broker and search server (started
once per session), a local HTTP server standing in for Slack, and real worker processes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline.embedded import Stack, free_port
from pipeline.settings import Settings


class RecordingWebhook:
    """Stands in for a Slack incoming webhook: records every POST body. ``fail_first`` requests
    are answered 429 with Retry-After: 1."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        self.fail_first = 0
        self.requests = 0
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with hook.lock:
                    hook.requests += 1
                    limited = hook.requests <= hook.fail_first
                    if not limited:
                        hook.posts.append(json.loads(body))
                if limited:
                    self.send_response(429)
                    self.send_header("Retry-After", "1")
                    self.end_headers()
                    self.wfile.write(b"rate_limited")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/secret-token"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    with Stack.start() as st:
        yield st


@pytest.fixture(scope="session")
def webhook() -> Iterator[RecordingWebhook]:
    hook = RecordingWebhook()
    yield hook
    hook.close()


def make_settings(stack: Stack, tmp: Path, prefix: str, **extra: object) -> Settings:
    return Settings(
        kafka_bootstrap=stack.broker.bootstrap,
        es_url=stack.search.url,
        es_compat="plain-json",
        es_refresh=True,
        topic_prefix=prefix,
        es_index_prefix=prefix,
        worker_id=f"{prefix}-worker",
        kafka_rebalance_timeout_s=1.0,
        kafka_fetch_max_wait_ms=50,
        topic_partitions=2,
        metrics_port=free_port(),
        data_dir=tmp / "data",
        log_level="info",
        **extra,
    )


def wait_for(predicate, timeout: float, interval: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
