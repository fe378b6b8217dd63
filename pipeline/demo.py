"""``crosswire demo``: the embedded stack, one worker and the seed articles, end to end."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .embedded import stop_process
from .settings import Settings


def worker_env(s: Settings, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a worker subprocess that uses exactly the settings ``s`` (secrets included:
    they travel in the environment, never on a command line)."""
    env = dict(os.environ if base is None else base)
    for name in Settings.model_fields:
        value = getattr(s, name)
        if value is None:
            env.pop(f"CROSSWIRE_{name.upper()}", None)
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        elif isinstance(value, tuple):
            import json

            value = json.dumps(list(value))
        env[f"CROSSWIRE_{name.upper()}"] = str(value)
    return env


def start_worker(s: Settings, log_path: Path) -> subprocess.Popen:
    log = log_path.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "worker"],
        env=worker_env(s),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )


def stop_worker(proc: subprocess.Popen, grace: float = 15.0) -> None:
    """Stop a worker the way an operator would (SIGTERM, so faust commits and leaves the group)."""
    stop_process(proc, grace)


def wait_until_settled(client, s: Settings, expected_articles: int, *, timeout: float, quiet_s: float = 4.0,
                       worker: subprocess.Popen | None = None, tick=None) -> bool:
    """Wait until the articles index holds ``expected_articles`` documents, no alert is waiting to be
    sent (status ``pending``: workers send alerts after indexing, from a queue), and the counts have
    not changed for ``quiet_s`` seconds. False on timeout or worker exit."""
    from .search import count

    deadline = time.monotonic() + timeout
    last, stable_since = None, time.monotonic()
    while time.monotonic() < deadline:
        if worker is not None and worker.poll() is not None:
            return False
        try:
            pending = count(client, s, "alerts", {"term": {"status": "pending"}})
            now = (count(client, s, "articles"), count(client, s, "contradictions"), count(client, s, "alerts"), pending)
        except Exception:  # noqa: BLE001 - index not there yet
            now = None
        if tick:
            tick(now[0] if now else 0)
        if now != last:
            last, stable_since = now, time.monotonic()
        elif now and now[0] >= expected_articles and now[3] == 0 and time.monotonic() - stable_since >= quiet_s:
            return True
        time.sleep(0.5)
    return False


def run_demo(path: str, *, timeout: float, console: Console) -> int:
    from .cli import _contradictions_table, _progress, _stories_table
    from .embedded import EmbeddedError, Stack
    from .kafka import ArticleProducer, ensure_topics
    from .search import ensure_templates, list_contradictions, list_stories, make_client
    from .sources import count_records, expand, iter_records

    base = Settings()
    workdir = Path(tempfile.mkdtemp(prefix="crosswire-demo-"))
    log_path = workdir / "worker.log"
    try:
        stack = Stack.start()
    except EmbeddedError as e:
        console.print(f"[red]error:[/] {e}")
        return 1
    worker = None
    try:
        s = base.model_copy(
            update={
                "kafka_bootstrap": stack.broker.bootstrap,
                "es_url": stack.search.url,
                "es_compat": "plain-json",
                "es_refresh": True,
                "kafka_rebalance_timeout_s": 1.0,
                "kafka_fetch_max_wait_ms": 50,
                "metrics_port": 0,
                "data_dir": workdir / "data",
                "log_level": "info",
            }
        )
        console.print(f"[green]embedded broker[/] {stack.broker.bootstrap}   [green]search server[/] {stack.search.url}")
        ensure_topics(s)
        client = make_client(s)
        ensure_templates(client, s)
        worker = start_worker(s, log_path)
        console.print(f"worker started (pid {worker.pid}); its log: {log_path}")

        files = expand([path])
        total = count_records(files) or 0
        producer = ArticleProducer(s)
        try:
            with _progress() as progress:
                task = progress.add_task("producing", total=total)
                summary = producer.send(iter_records(files), on_progress=lambda n: progress.advance(task, n),
                                        on_error=lambda o, m: progress.console.print(f"[yellow]rejected[/] {o}: {m}"))
        finally:
            producer.close()
        console.print(f"sent {summary.sent} article(s), rejected {summary.total_rejected}")

        with _progress() as progress:
            task = progress.add_task("processing (spaCy, linking, claims, contradictions)", total=summary.sent)
            ok = wait_until_settled(client, s, summary.sent, timeout=timeout, worker=worker,
                                    tick=lambda n: progress.update(task, completed=min(n, summary.sent)))
        if not ok:
            console.print(f"[red]the worker did not finish in {timeout:.0f} s[/]; last lines of {log_path}:")
            console.print("\n".join(log_path.read_text(errors="replace").splitlines()[-30:]))
            return 1

        console.print(_stories_table(list_stories(client, s, size=10)))
        console.print(_contradictions_table(list_contradictions(client, s, size=50)))
        alerts = client.search(index=s.index("alerts"), size=100, query={"match_all": {}})["hits"]["hits"]
        t = Table(title="alerts")
        for col in ("kind", "contradiction", "channel", "status", "error"):
            t.add_column(col)
        for h in sorted(alerts, key=lambda h: h["_source"].get("created") or ""):
            a = h["_source"]
            t.add_row(a.get("kind", ""), a.get("contradiction", ""), a.get("channel", ""), a.get("status", ""), a.get("error") or "")
        console.print(t)
        where = (
            "posted to the Slack webhook in CROSSWIRE_SLACK_WEBHOOK_URL"
            if s.slack_webhook_url
            else f"printed by the worker (no CROSSWIRE_SLACK_WEBHOOK_URL set): see {log_path}"
        )
        console.print(f"Alerts were {where}, and each is recorded in the index {s.index('alerts')}.")
        return 0
    finally:
        if worker is not None:
            stop_worker(worker)
        stack.stop()
