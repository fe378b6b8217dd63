"""The seeds through real workers: embedded broker → faust worker → embedded search server → local
webhook. Nothing here mocks a Kafka or Elasticsearch client."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from pipeline.bench import state_bytes as bench_state_bytes
from pipeline.demo import start_worker, stop_worker
from pipeline.kafka import ArticleProducer, ensure_topics, read_topic
from pipeline.search import count, ensure_templates, list_contradictions, list_stories, make_client
from pipeline.sources import Record, expand, iter_records

from ..conftest import SEEDS
from .conftest import make_settings, wait_for

pytestmark = pytest.mark.integration

SEED_IDS = sorted(p.stem for p in SEEDS.glob("*.txt"))


def _produce(s, records):
    producer = ArticleProducer(s)
    try:
        return producer.send(records)
    finally:
        producer.close()


def _settled(client, s, n_articles: int, state: dict) -> bool:
    """Everything indexed, every alert claimed and none still waiting in a sender queue, and all
    of that unchanged for 3 s (alerts are sent by a thread of their own, after indexing)."""
    pending = count(client, s, "alerts", {"term": {"status": "pending"}})
    now = (count(client, s, "articles"), count(client, s, "contradictions"), count(client, s, "alerts"), pending)
    if now[0] >= n_articles and now[3] == 0 and now == state.get("last"):
        state["stable"] = state.get("stable", 0) + 1
    else:
        state["stable"] = 0
    state["last"] = now
    return state["stable"] >= 6  # unchanged for 3 s


@pytest.fixture(scope="module")
def seeded(stack, webhook, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    s = make_settings(stack, tmp, "e2e", slack_webhook_url=webhook.url, slack_allowed_hosts=("127.0.0.1",))
    ensure_topics(s)
    client = make_client(s)
    ensure_templates(client, s)
    webhook.fail_first = 1  # the first post is rate-limited: the alerter must wait and retry
    log = tmp / "worker.log"
    worker = start_worker(s, log)
    bad = [
        Record("bad:1", b'{"text": "unterminated'),
        Record("bad:2", json.dumps({"title": "no text here"}).encode()),
    ]
    summary = _produce(s, list(iter_records(expand([str(SEEDS)]))) + bad)
    state: dict = {}
    try:
        wait_for(lambda: worker.poll() is not None or _settled(client, s, 5, state), 240, what="the worker to index the seeds")
        assert worker.poll() is None, log.read_text()[-3000:]
        yield {"s": s, "client": client, "summary": summary, "worker": worker, "log": log, "tmp": tmp}
    finally:
        stop_worker(worker)


def test_producer_reports_and_dead_letters_bad_records(seeded):
    summary = seeded["summary"]
    assert summary.sent == 5
    assert summary.rejected == {"invalid_json": 1, "missing_text": 1}
    letters = [json.loads(v) for _, v in read_topic(seeded["s"], "dead-letters")]
    assert sorted(d["reason"] for d in letters) == ["invalid_json", "missing_text"]
    assert all(d["payload"] and d["message"] for d in letters)


def test_all_seeds_indexed_in_one_story(seeded):
    s, client = seeded["s"], seeded["client"]
    assert count(client, s, "articles") == 5
    stories = list_stories(client, s)
    assert len(stories) == 1, [st["title"] for st in stories]
    assert sorted(stories[0]["articles"]) == SEED_IDS
    assert "Reuters" in stories[0]["outlets"]


def test_detained_count_contradiction_with_sides(seeded):
    s, client = seeded["s"], seeded["client"]
    found = list_contradictions(client, s)
    numeric = [c for c in found if c["kind"] == "numeric" and c["about"].startswith("detained")]
    assert numeric, [c["about"] for c in found]
    values = " | ".join(side["value"] for c in numeric for side in c["sides"])
    for v in ("14", "19", "23"):
        assert v in values, values
    side_articles = {a for c in numeric for side in c["sides"] for a in side["articles"]}
    assert {"000_a98772b5dcbc8382", "001_3af53fcc4765ecfb"} <= side_articles
    assert all(side.get("quotes") for c in numeric for side in c["sides"])


def test_every_contradiction_alerted_once_through_the_webhook(seeded, webhook):
    s, client = seeded["s"], seeded["client"]
    alerts = [h["_source"] for h in client.search(index=s.index("alerts"), size=200)["hits"]["hits"]]
    assert alerts and all(a["status"] == "sent" for a in alerts), alerts
    assert len(webhook.posts) == len(alerts)
    assert webhook.requests == len(alerts) + 1  # one 429, retried after Retry-After
    texts = [json.dumps(p) for p in webhook.posts]
    assert len(set(texts)) == len(texts)  # never the same message twice
    assert any("14" in t and "19" in t for t in texts)
    assert webhook.url.split("/services/")[1] not in seeded["log"].read_text()  # the secret is never logged


def test_metrics_health_and_readiness_endpoints(seeded):
    base = f"http://127.0.0.1:{seeded['s'].metrics_port}"
    for path in ("/healthz", "/readyz"):
        with urllib.request.urlopen(base + path, timeout=5) as resp:
            assert resp.status == 200 and json.loads(resp.read())["status"] == "ok"
    body = urllib.request.urlopen(base + "/metrics", timeout=5).read().decode()
    assert 'crosswire_consumer_lag{partition="0",topic="e2e-analysed"} 0.0' in body
    assert "crosswire_partition_idle_seconds" in body
    assert 'crosswire_articles_total{outcome="ok",stage="link"} 5.0' in body
    assert "crosswire_stage_seconds_bucket" in body
    assert "crosswire_stories_created_total 1.0" in body
    assert 'crosswire_alerts_total{channel="slack",outcome="sent"}' in body
    # the per-story state gauge, refreshed by a 5-second timer: the story's linker and record state
    deadline = time.monotonic() + 15
    while True:
        held = bench_state_bytes(urllib.request.urlopen(base + "/metrics", timeout=5).read().decode())
        if held.get("link", 0) > 1000 and held.get("story", 0) > 1000 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert held.get("link", 0) > 1000 and held.get("story", 0) > 1000, held


def test_resending_changes_nothing_and_state_survives_restart(seeded, webhook):
    s, client = seeded["s"], seeded["client"]
    before = (count(client, s, "articles"), count(client, s, "claims"), count(client, s, "contradictions"), count(client, s, "stories"))
    posts_before = len(webhook.posts)
    stop_worker(seeded["worker"])  # state must come back from the table changelogs
    worker = start_worker(s, seeded["log"])
    try:
        records = list(iter_records(expand([str(SEEDS)])))
        # the same five again, plus one article that repeats seed 001 under a new id and outlet
        text = (SEEDS / "001_3af53fcc4765ecfb.txt").read_text()
        extra = Record("extra", json.dumps({"id": "copy-of-001", "source": "Wire copy", "text": text}).encode())
        assert _produce(s, records + [extra]).sent == 6
        state: dict = {}
        wait_for(lambda: worker.poll() is not None or _settled(client, s, 6, state), 240, what="the restarted worker")
        assert worker.poll() is None, Path(seeded["log"]).read_text()[-3000:]
        after = (count(client, s, "articles"), count(client, s, "claims"), count(client, s, "contradictions"), count(client, s, "stories"))
        assert after[0] == before[0] + 1
        assert after[3] == before[3] == 1  # the copy joined the restored story
        story = list_stories(client, s)[0]
        assert "copy-of-001" in story["articles"]
        doc = client.get(index=s.index("articles"), id="copy-of-001")["_source"]
        assert doc.get("duplicate_of") == "001_3af53fcc4765ecfb"
        assert len(webhook.posts) >= posts_before
        texts = [json.dumps(p) for p in webhook.posts]
        assert len(set(texts)) == len(texts)
    finally:
        stop_worker(worker)


def test_a_story_quiet_past_the_horizon_retires_and_its_state_is_dropped(seeded):
    """An article arriving (by Kafka time) after the horizon retires the seed story: the linker drops
    it from the live set and tells the story agent, which drops its state; its documents stay."""
    from kafka import KafkaProducer

    s, client = seeded["s"], seeded["client"]
    seed_story = list_stories(client, s)[0]["id"]
    worker = start_worker(s, seeded["log"])
    try:
        producer = KafkaProducer(bootstrap_servers=s.kafka_bootstrap)
        later_ms = int((__import__("time").time() + (s.link_horizon_days + 2) * 86400) * 1000)
        text = ("The city council of Springfield voted on Tuesday to rebuild the old railway bridge over the river. "
                "The mayor said the work would start in spring and take two years, and residents welcomed the plan.")
        sent = producer.send(s.topic("articles"), key=b"late-1", value=json.dumps({"id": "late-1", "text": text}).encode(), timestamp_ms=later_ms)
        assert sent.get(timeout=30).offset >= 0
        producer.close()
        log = Path(seeded["log"])
        wait_for(lambda: worker.poll() is not None or f"story {seed_story} retired" in log.read_text(), 120,
                 what="the seed story to retire")
        assert worker.poll() is None, log.read_text()[-3000:]
        body = urllib.request.urlopen(f"http://127.0.0.1:{s.metrics_port}/metrics", timeout=5).read().decode()
        assert "crosswire_stories_retired_total 1.0" in body
        assert seed_story in {st["id"] for st in list_stories(client, s)}  # still searchable
        # what the retired story left (its record in the link table) survives a restart: a new
        # worker restores the linker from the table and links the next article
        stop_worker(worker)
        stop_worker(seeded["worker"])  # (still running when this test runs alone)
        before = log.read_text()
        worker = start_worker(s, log)
        producer = KafkaProducer(bootstrap_servers=s.kafka_bootstrap)
        sent = producer.send(s.topic("articles"), key=b"late-2", value=json.dumps({"id": "late-2", "text": text + " Work starts soon."}).encode(),
                             timestamp_ms=later_ms + 60_000)
        assert sent.get(timeout=30).offset >= 0
        producer.close()
        wait_for(lambda: worker.poll() is not None or "linked late-2 to story" in log.read_text()[len(before):], 120,
                 what="the restarted worker to link the next article")
        after = log.read_text()[len(before):]
        assert worker.poll() is None, after[-3000:]
        assert "linker restored with 1 live stories" in after  # late-1's story; the seed story stays retired
    finally:
        stop_worker(worker)


def test_first_offset_at_reads_the_log_without_a_group(stack, tmp_path):
    """What the stall watchdog asks before it re-reads a hole: is there a record at that offset?"""
    from pipeline.kafka import first_offset_at

    s = make_settings(stack, tmp_path, "offsets").model_copy(update={"topic_partitions": 1})
    ensure_topics(s)
    records = [Record(f"r{i}", json.dumps({"id": f"o{i}", "text": f"Article number {i} about the bridge."}).encode()) for i in range(6)]
    assert _produce(s, records).sent == 6
    topic = s.topic("articles")
    assert [first_offset_at(s, topic, 0, off) for off in (0, 3, 5)] == [0, 3, 5]
    assert first_offset_at(s, topic, 0, 6, timeout_s=1.0) is None  # past the end: nothing came
