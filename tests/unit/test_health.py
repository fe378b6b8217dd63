from __future__ import annotations

import io
import json
import logging
import urllib.error
import urllib.request

from pipeline.health import Health, serve
from pipeline.logs import JsonFormatter, json_handler
from pipeline.metrics import Metrics


def test_endpoints_report_liveness_readiness_and_metrics():
    now = [100.0]
    health = Health(stall_after_s=30, clock=lambda: now[0])
    metrics = Metrics.create()
    metrics.articles.labels("parse", "in").inc()
    server = serve(metrics.registry, health, 0, "127.0.0.1")
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert urllib.request.urlopen(base + "/healthz").status == 200
        try:
            urllib.request.urlopen(base + "/readyz")
            raise AssertionError("not ready yet, must be 503")
        except urllib.error.HTTPError as e:
            assert e.code == 503 and json.loads(e.read())["reason"] == "starting"
        health.set_ready(True, "2 partition(s) assigned")
        assert urllib.request.urlopen(base + "/readyz").status == 200
        now[0] += 31  # the event loop stopped ticking
        try:
            urllib.request.urlopen(base + "/healthz")
            raise AssertionError("a stalled loop must be 503")
        except urllib.error.HTTPError as e:
            assert e.code == 503 and "not ticked" in json.loads(e.read())["reason"]
        body = urllib.request.urlopen(base + "/metrics").read().decode()
        assert 'crosswire_articles_total{outcome="in",stage="parse"} 1.0' in body
    finally:
        server.shutdown()


def test_json_logs_carry_article_and_story_ids():
    stream = io.StringIO()
    logger = logging.getLogger("crosswire.test.json")
    logger.propagate = False
    logger.addHandler(json_handler(stream))
    logger.setLevel(logging.INFO)
    logger.info("linked %s", "a1", extra={"article": "a1", "story": "s9"})
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed", extra={"stage": "link"})
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "linked a1" and first["article"] == "a1" and first["story"] == "s9"
    assert second["level"] == "error" and second["stage"] == "link" and "ValueError: boom" in second["exception"]
    assert isinstance(JsonFormatter().format(logging.makeLogRecord({"msg": "x"})), str)
