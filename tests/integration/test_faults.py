"""Fault injection: real workers on the embedded broker and search server, a local webhook, and a
fault in the middle of a 500-article stream. Each case checks the same invariants afterwards:

- every produced article is in the articles index exactly once, and in exactly one story;
- the stories (as sets of article ids), the claims and the contradictions are those of an
  uninterrupted reference run over the same articles (one partition, so the order is fixed);
- every alert record is ``sent``, and the webhook accepted exactly one post per alert record: the
  multiset of accepted payloads equals the payloads rebuilt from the records (no post twice, none
  lost).

The embedded broker (Tansu) and search server (osmem) keep their data in memory only, and this
Tansu build has no persistent storage engine (``sqlite://``/``turso://`` are "feature not
enabled", ``postgres://``/``s3://`` need servers we do not have), so a restart would lose every
topic and index. Outages are therefore simulated with a loopback TCP proxy (:class:`TcpProxy`)
between the worker and the server: cutting it drops every connection and refuses new ones, which
is what a client sees while a server restarts; restoring it is the server coming back with its
data, as a restart with persistent storage would. For the broker, Tansu advertises the proxy's
address in its metadata, so the Kafka clients' every connection goes through the proxy.

Run alone: ``.venv/bin/pytest tests/integration/test_faults.py -s`` prints each case's numbers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

from pipeline.alert import build_blocks
from pipeline.demo import start_worker, stop_worker
from pipeline.kafka import ArticleProducer, ensure_topics, read_topic
from pipeline.search import count, ensure_templates, make_client
from pipeline.settings import Settings
from pipeline.types import Contradiction

from .conftest import make_settings, wait_for
from .faults import Corpus, ProxiedBroker, ScriptedWebhook, TcpProxy, make_corpus, storm

pytestmark = pytest.mark.integration

#: Fault-case settings: one partition (a fixed order, so runs are comparable), a fast outbox sweep
#: (a claim orphaned by a dead worker is re-sent after 5 s), and a rate limit that does not make
#: the 60-odd alerts of the corpus the bottleneck (the 429 storm case uses Slack's 1/s).
FAST = dict(topic_partitions=1, alert_pending_timeout_s=5.0, alert_retry_interval_s=1.0, alert_rate_per_s=20.0, alert_burst=5,
            alert_timeout_s=2.0, alert_max_wait_s=2.0)


# ------------------------------------------------------------------------------------- helpers


@dataclass
class Outcome:
    """What a run left in the index and at the webhook (the numbers each case reports)."""

    produced: int
    indexed: int
    unique_ids: int
    in_stories: int  # article ids over all story documents, with repeats
    stories: frozenset[frozenset[str]]
    claims: int
    contradictions: dict[str, int]  # contradiction id -> version (how many times it changed)
    disputes: dict[str, tuple[str, ...]]  # contradiction id -> its sides' values
    alerts: dict[str, str]  # alert id -> status
    posts: int  # requests the webhook answered 200
    requests: int  # all requests, 429s included
    seconds: float = 0.0

    def numbers(self) -> dict[str, Any]:
        d = asdict(self)
        d["stories"] = len(self.stories)
        d["contradictions"] = len(self.contradictions)
        d.pop("disputes")
        d["alerts"] = len(self.alerts)
        return d


def _all(client: Any, index: str, size: int = 5000) -> list[dict]:
    resp = client.search(index=index, size=size, query={"match_all": {}})
    hits = resp["hits"]["hits"]
    assert len(hits) == count_index(client, index), f"{index}: a search returned fewer hits than the index holds"
    return [h["_source"] | {"_id": h["_id"]} for h in hits]


def count_index(client: Any, index: str) -> int:
    return int(client.count(index=index)["count"])


def expected_payloads(alerts: list[dict]) -> Counter:
    """The Slack payload each alert record stands for, rebuilt from its stored contradiction."""
    out: Counter = Counter()
    for a in alerts:
        c = Contradiction.model_validate_json(a["body"])
        out[json.dumps(build_blocks(c, a.get("story_title") or c.story, a["kind"]), sort_keys=True)] += 1
    return out


def outcome(client: Any, s: Settings, corpus: Corpus, hook: ScriptedWebhook, seconds: float = 0.0) -> Outcome:
    articles = _all(client, s.index("articles"))
    stories = _all(client, s.index("stories"))
    contradictions = _all(client, s.index("contradictions"))
    alerts = _all(client, s.index("alerts"))
    return Outcome(
        produced=len(corpus.records),
        indexed=len(articles),
        unique_ids=len({a["_id"] for a in articles}),
        in_stories=sum(len(st["articles"]) for st in stories),
        stories=frozenset(frozenset(st["articles"]) for st in stories),
        claims=count(client, s, "claims"),
        contradictions={c["id"]: int(c.get("version") or 1) for c in contradictions},
        disputes={c["id"]: tuple(sorted(side["value"] for side in c["sides"])) for c in contradictions},
        alerts={a["id"]: a["status"] for a in alerts},
        posts=len(hook.accepted),
        requests=len(hook.requests),
        seconds=seconds,
    )


class DuplicatePost(AssertionError):
    """The webhook accepted the same payload more than once (and nothing else was wrong)."""


def _label(payload_key: str) -> str:
    """A short human label of a Slack payload: its second block says new/updated and the version."""
    body = json.loads(payload_key)
    return f"{body['blocks'][1]['text']['text'][:60]} | {body['text'][:80]}"


def invariant_problems(client: Any, s: Settings, corpus: Corpus, hook: ScriptedWebhook) -> tuple[list[str], list[str]]:
    """Everything that breaks "zero lost, zero duplicated", as (problems, duplicate posts)."""
    problems: list[str] = []
    ids = set(corpus.ids)
    articles = _all(client, s.index("articles"))
    indexed = {a["_id"] for a in articles}
    if indexed != ids or len(articles) != len(ids):
        problems.append(f"articles index: {len(articles)} documents, lost {sorted(ids - indexed)[:10]}, unknown {sorted(indexed - ids)[:10]}")
    # every article sits in exactly one story, and its document names that story
    story_of: dict[str, list[str]] = {}
    for st in _all(client, s.index("stories")):
        for aid in st["articles"]:
            story_of.setdefault(aid, []).append(st["id"])
    twice = {a: sts for a, sts in story_of.items() if len(sts) > 1}
    if twice:
        problems.append(f"articles in more than one story: {dict(list(twice.items())[:5])}")
    if ids - set(story_of):
        problems.append(f"articles in no story: {sorted(ids - set(story_of))[:10]}")
    wrong = [a["_id"] for a in articles if story_of.get(a["_id"]) != [a["story"]]]
    if wrong:
        problems.append(f"article documents naming another story than the one holding them: {wrong[:10]}")
    # a valid article dead-lettered by the worker is an article lost to its story
    letters = [json.loads(v) for _, v in read_topic(s, "dead-letters")]
    if letters:
        problems.append(f"{len(letters)} dead letter(s): {[(d['stage'], d['reason'], d['message'][:160]) for d in letters[:3]]}")
    # the outbox: every record sent, and exactly one accepted post per record
    alerts = _all(client, s.index("alerts"))
    if not alerts:
        problems.append("no alert at all: the corpus is meant to raise contradictions")
    versions = sum(int(c.get("version") or 1) for c in _all(client, s.index("contradictions")))
    if alerts and len(alerts) != versions:
        problems.append(f"{len(alerts)} alert records for {versions} contradiction versions (one each expected)")
    unsent = {a["id"]: (a["status"], a.get("error")) for a in alerts if a["status"] != "sent"}
    if unsent:
        problems.append(f"alerts not sent: {unsent}")
    posted = Counter(p.key for p in hook.accepted)
    want = expected_payloads(alerts)
    dups = [f"{n}x {_label(k)}" for k, n in posted.items() if n > 1]
    extra = [_label(k) for k in (posted - want) if k not in want]
    missing = [_label(k) for k in (want - posted)]
    if extra or missing:
        problems.append(f"webhook posts differ from the alert records: posted but no record {extra}, record but not posted {missing}")
    return problems, dups


def assert_invariants(client: Any, s: Settings, corpus: Corpus, hook: ScriptedWebhook, got: Outcome) -> None:
    """Zero lost, zero duplicated: in the index and at the webhook. Raises :class:`DuplicatePost`
    when duplicate posts are the only problem, an AssertionError listing every problem otherwise."""
    problems, dups = invariant_problems(client, s, corpus, hook)
    if problems:
        raise AssertionError("; ".join(problems + ([f"posted more than once: {dups}"] if dups else [])))
    if dups:
        raise DuplicatePost(f"posted more than once: {dups}")


def assert_same_as_reference(got: Outcome, ref: Outcome) -> None:
    assert got.stories == ref.stories, (
        f"stories differ from the uninterrupted run: {len(got.stories - ref.stories)} not in it, "
        f"{len(ref.stories - got.stories)} missing; e.g. {sorted(map(sorted, got.stories - ref.stories))[:2]}")
    assert got.claims == ref.claims
    # The same disputes with the same sides. How many times each changed on the way (its version,
    # and so its alert ids) depends on the order in which the story's articles arrived, which the
    # articles topic's partitions interleave differently in every run; each run's own alerts are
    # checked against its own versions (one post per version, none twice) by assert_invariants.
    assert got.disputes == ref.disputes


class NotSettled(Exception):
    """The run did not reach its final state in time (not an AssertionError, so that an xfail
    expecting a wrong final state does not swallow a hang)."""


def settle(client: Any, s: Settings, n: int, *, timeout: float, worker: subprocess.Popen | None, log: Path,
           quiet_s: float = 4.0) -> float:
    """Wait until ``n`` articles are indexed, no alert is pending or failed, and nothing changed for
    ``quiet_s``. Returns when that state was first reached (monotonic)."""
    state: dict[str, Any] = {"last": None, "since": time.monotonic()}

    def done() -> bool:
        if worker is not None and worker.poll() is not None:
            raise NotSettled(f"the worker exited with {worker.returncode}:\n{tail(log)}")
        try:
            alerts = _all(client, s.index("alerts"))
            now = (count(client, s, "articles"), count(client, s, "contradictions"), count(client, s, "claims"),
                   tuple(sorted((a["id"], a["status"]) for a in alerts)))
        except Exception:  # noqa: BLE001 - the index may be unreachable during a fault
            return False
        if now != state["last"]:
            state["last"], state["since"] = now, time.monotonic()
            return False
        open_alerts = any(st != "sent" for _, st in now[3])
        return now[0] >= n and not open_alerts and time.monotonic() - state["since"] >= quiet_s

    try:
        wait_for(done, timeout, what=f"{n} articles indexed and every alert sent")
    except AssertionError as e:
        raise NotSettled(f"{e}; last state: articles={state['last'] and state['last'][0]} "
                         f"alerts={state['last'] and Counter(st for _, st in state['last'][3])}\n{tail(log)}") from None
    return state["since"]


def tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def produce(s: Settings, corpus: Corpus) -> None:
    producer = ArticleProducer(s)
    try:
        assert producer.send(corpus.records).sent == len(corpus.records)
    finally:
        producer.close()


def prepare(s: Settings) -> Any:
    ensure_topics(s)
    client = make_client(s)
    ensure_templates(client, s)
    return client


def metric(s: Settings, name: str) -> float:
    """The sum of a metric's samples on the worker's /metrics (0 when absent)."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{s.metrics_port}/metrics", timeout=5).read().decode()
    total = 0.0
    for line in body.splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def report(case: str, got: Outcome, **extra: Any) -> None:
    print(f"\n[fault] {case}: " + json.dumps(got.numbers() | extra))


def settings_for(tmp: Path, prefix: str, stack: Any, hook: ScriptedWebhook, **extra: Any) -> Settings:
    opts = dict(FAST) | {"slack_webhook_url": hook.url, "slack_allowed_hosts": ("127.0.0.1",)} | extra
    partitions = opts.pop("topic_partitions")  # make_settings sets its own
    return make_settings(stack, tmp, prefix, **opts).model_copy(update={"topic_partitions": partitions})


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    c = make_corpus()
    assert len(c.records) >= 500 and len(set(c.ids)) == len(c.records)
    return c


@pytest.fixture(scope="module")
def reference(stack: Any, corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    """The uninterrupted run every fault case is compared with."""
    tmp = tmp_path_factory.mktemp("fault-ref")
    hook = ScriptedWebhook()
    s = settings_for(tmp, "fault-ref", stack, hook)
    client = prepare(s)
    log = tmp / "worker.log"
    worker = start_worker(s, log)
    t0 = time.monotonic()
    try:
        produce(s, corpus)
        done = settle(client, s, len(corpus.records), timeout=240, worker=worker, log=log)
        got = outcome(client, s, corpus, hook, done - t0)
        assert_invariants(client, s, corpus, hook, got)
        report("reference", got)
        yield got
    finally:
        stop_worker(worker)
        hook.close()


# -------------------------------------------------------------------------------------- cases


def test_reference_run_has_stories_claims_and_alerts(reference: Outcome, corpus: Corpus) -> None:
    """The corpus exercises what the fault cases compare: many stories, claims and alerts."""
    assert reference.indexed == len(corpus.records)
    assert len(reference.stories) >= 30
    assert reference.claims >= len(corpus.records)
    assert len(reference.contradictions) >= 3
    assert len(reference.alerts) == sum(reference.contradictions.values())  # one alert per version
    assert reference.posts == len(reference.alerts)


def _kill_at_held_post(stack: Any, corpus: Corpus, tmp_path: Path, prefix: str, *, hold: int, accept: bool,
                       min_share: float = 0.0, **extra: Any) -> tuple[Settings, Any, ScriptedWebhook, Outcome, dict[str, Any]]:
    """Run a worker until the webhook holds its ``hold``-th post and ``min_share`` of the stream is
    indexed (alerts are sent by a thread of their own, so indexing goes on behind a held post),
    SIGKILL it with the post in flight, start another worker on the same group and wait until
    everything settled. Returns settings, client, webhook, outcome and numbers."""
    hook = ScriptedWebhook()
    hook.hold(hold, accept=accept)
    s = settings_for(tmp_path, prefix, stack, hook, **extra)
    client = prepare(s)
    log = tmp_path / "worker.log"
    first = start_worker(s, log)
    second = None
    try:
        produce(s, corpus)
        n = len(corpus.records)
        wait_for(lambda: first.poll() is not None or hook.holding.is_set(), 180, interval=0.05,
                 what=f"post {hold} to reach the webhook")
        if min_share > 0:
            wait_for(lambda: first.poll() is not None or count(client, s, "articles") >= n * min_share, 180, interval=0.05,
                     what=f"{min_share:.0%} of the stream indexed behind the held post")
        assert first.poll() is None, tail(log)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        killed_at = time.monotonic()
        hook.release.set()
        at_kill = count(client, s, "articles")
        alerts_at_kill = Counter(a["status"] for a in _all(client, s.index("alerts")))
        assert at_kill >= n * min_share, f"the kill came too early to be mid-stream: {at_kill} of {n} indexed"
        assert at_kill < n, "the kill came after the stream: the corpus should give the hold point later"
        second = start_worker(s, log)
        done = settle(client, s, n, timeout=240, worker=second, log=log)
        got = outcome(client, s, corpus, hook, done - killed_at)
        numbers = {"indexed_at_kill": at_kill, "alerts_at_kill": dict(alerts_at_kill), "recover_s": round(done - killed_at, 1)}
        return s, client, hook, got, numbers
    finally:
        for w in (first, second):
            if w is not None:
                stop_worker(w)
        hook.close()


def test_kill_minus_nine_mid_stream(stack: Any, corpus: Corpus, reference: Outcome, tmp_path: Path) -> None:
    """SIGKILL a worker mid-stream while it is posting an alert (the webhook holds the 5th post,
    which never completes, while indexing goes on and more alerts are claimed behind it), start
    another: nothing lost, nothing doubled, the same stories and alerts as without the crash. The
    orphaned claims, the one in flight and the queued ones, are re-sent by the new worker's
    outbox sweep."""
    # the held post must outlast the wait for a quarter of the stream: a 30 s HTTP timeout (and a
    # pending timeout above it, as settings require) instead of the suite's fast 2 s
    s, client, hook, got, numbers = _kill_at_held_post(stack, corpus, tmp_path, "fault-kill", hold=5, accept=False, min_share=0.25,
                                                       alert_timeout_s=30.0, alert_pending_timeout_s=35.0)
    report("kill -9", got, **numbers)
    # the kill left claimed, unsent alerts behind the held one: the sender queue was not empty
    assert numbers["alerts_at_kill"].get("pending", 0) >= 2, numbers
    assert_invariants(client, s, corpus, hook, got)
    assert_same_as_reference(got, reference)
    held = hook.requests[4]
    assert held.status == 0 and sum(1 for p in hook.accepted if p.key == held.key) == 1  # re-sent, once


@pytest.mark.xfail(
    strict=True,
    # NotSettled: seen once in ~10 runs under heavy CPU contention, 99 of 100 articles indexed and
    # never the last one; not reproduced since. Kept visible here and in the issue notes.
    raises=(DuplicatePost, NotSettled),
    reason=(
        "pipeline/notify.py: a worker killed after the webhook accepted a post and before "
        "finish_alert stored 'sent' leaves the record 'pending'; retry_due() on the next worker "
        "takes it over after alert_pending_timeout_s and posts it again. Incoming webhooks have no "
        "idempotency key, so the window cannot be closed by the outbox alone (the notify.py "
        "docstring names it); see the fault-suite report for mitigations."
    ),
)
def test_kill_minus_nine_after_the_webhook_accepted_but_before_sent_is_stored(stack: Any, tmp_path: Path) -> None:
    """The one window the outbox leaves: Slack has posted, the worker dies before recording it."""
    small = make_corpus(n_stories=10)
    s, client, hook, got, numbers = _kill_at_held_post(stack, small, tmp_path, "fault-window", hold=1, accept=True)
    report("kill -9 between post and 'sent'", got, **numbers)
    assert_invariants(client, s, small, hook, got)


def test_search_server_down_for_30_s(stack: Any, corpus: Corpus, reference: Outcome, tmp_path: Path) -> None:
    """The worker reaches the search server through a proxy that is cut for 30 s mid-stream: the
    worker waits (back-pressure), counts its write errors, does not crash, and catches up."""
    hook = ScriptedWebhook()
    proxy = TcpProxy(stack.search.port)
    s0 = settings_for(tmp_path, "fault-es", stack, hook)
    client = prepare(s0)  # the test reads and prepares directly, the worker through the proxy
    s = s0.model_copy(update={"es_url": f"http://{proxy.address}"})
    log = tmp_path / "worker.log"
    worker = start_worker(s, log)
    try:
        produce(s, corpus)
        n = len(corpus.records)
        wait_for(lambda: worker.poll() is not None or count(client, s, "articles") >= n * 0.3, 180,
                 interval=0.1, what="a third of the stream indexed")
        errors_before = metric(s, "crosswire_es_write_errors_total")
        proxy.cut()
        cut_at = time.monotonic()
        at_cut = count(client, s, "articles")
        time.sleep(15)
        during = count(client, s, "articles")
        errors_during = wait_for(lambda: (v := metric(s, "crosswire_es_write_errors_total")) > errors_before and v,
                                 15, what="crosswire_es_write_errors_total to grow during the outage")
        time.sleep(max(0.0, 30 - (time.monotonic() - cut_at)))
        assert worker.poll() is None, f"the worker died while the search server was down:\n{tail(log)}"
        still = count(client, s, "articles")
        proxy.restore()
        restored_at = time.monotonic()
        done = settle(client, s, n, timeout=240, worker=worker, log=log)
        got = outcome(client, s, corpus, hook, done - restored_at)
        report("search server down 30 s", got, indexed_at_cut=at_cut, indexed_at_restore=still,
               es_write_errors=errors_during - errors_before, recover_s=round(done - restored_at, 1))
        # nothing reached the index through the cut proxy (a few in-flight writes may land at the cut)
        assert still - during <= 0 and during - at_cut <= s.batch_size
        assert_invariants(client, s, corpus, hook, got)
        assert_same_as_reference(got, reference)
    finally:
        stop_worker(worker)
        proxy.close()
        hook.close()


def test_search_server_lost_while_an_alert_is_being_sent(stack: Any, tmp_path: Path) -> None:
    """The search server goes away (30 s) while the webhook is answering a post: the worker cannot
    store the outcome. Afterwards the alert must still have been posted once and every article
    must still be in its story."""
    small = make_corpus(n_stories=20)
    hook = ScriptedWebhook()
    hook.hold(3, accept=True)
    proxy = TcpProxy(stack.search.port)
    s0 = settings_for(tmp_path, "fault-es-alert", stack, hook)
    client = prepare(s0)
    s = s0.model_copy(update={"es_url": f"http://{proxy.address}"})
    log = tmp_path / "worker.log"
    worker = start_worker(s, log)
    try:
        produce(s, small)
        wait_for(lambda: worker.poll() is not None or hook.holding.is_set(), 180, interval=0.05, what="post 3")
        proxy.cut()
        cut_at = time.monotonic()
        hook.release.set()  # the post is answered 200 with the search server out of reach
        at_cut = count(client, s, "articles")
        time.sleep(30)
        assert worker.poll() is None, f"the worker died while the search server was down:\n{tail(log)}"
        proxy.restore()
        restored_at = time.monotonic()
        done = settle(client, s, len(small.records), timeout=240, worker=worker, log=log)
        got = outcome(client, s, small, hook, done - restored_at)
        report("search server lost during an alert", got, indexed_at_cut=at_cut, outage_s=round(restored_at - cut_at, 1),
               recover_s=round(done - restored_at, 1))
        assert_invariants(client, s, small, hook, got)
    finally:
        stop_worker(worker)
        proxy.close()
        hook.close()


@pytest.fixture
def proxied_broker(tmp_path: Path) -> Iterator[ProxiedBroker]:
    with (tmp_path / "broker.log").open("ab") as blog:
        broker = ProxiedBroker.start(log=blog)
        try:
            yield broker
        finally:
            broker.stop()


def test_broker_outage_mid_stream(stack: Any, proxied_broker: ProxiedBroker, corpus: Corpus, reference: Outcome,
                                  tmp_path: Path) -> None:
    """Every Kafka connection of the worker goes through a proxy that is cut for 20 s mid-stream
    (the broker keeps its data, as a broker restarting on persistent storage would): after it
    comes back the worker resumes with no manual step."""
    hook = ScriptedWebhook()
    s = settings_for(tmp_path, "fault-broker", stack, hook).model_copy(update={"kafka_bootstrap": proxied_broker.bootstrap})
    client = prepare(s)
    log = tmp_path / "worker.log"
    worker = start_worker(s, log)
    try:
        produce(s, corpus)
        n = len(corpus.records)
        wait_for(lambda: worker.poll() is not None or count(client, s, "articles") >= n * 0.3, 180,
                 interval=0.1, what="a third of the stream indexed")
        proxied_broker.proxy.cut()
        at_cut = count(client, s, "articles")
        time.sleep(20)
        assert worker.poll() is None, f"the worker died while the broker was away:\n{tail(log)}"
        still = count(client, s, "articles")
        proxied_broker.proxy.restore()
        restored_at = time.monotonic()
        done = settle(client, s, n, timeout=240, worker=worker, log=log)
        got = outcome(client, s, corpus, hook, done - restored_at)
        report("broker outage 20 s", got, indexed_at_cut=at_cut, indexed_at_restore=still, recover_s=round(done - restored_at, 1))
        assert_invariants(client, s, corpus, hook, got)
        assert_same_as_reference(got, reference)
    finally:
        stop_worker(worker)
        hook.close()


def test_slow_delivery_is_not_taken_over_by_the_outbox_sweep(stack: Any, tmp_path: Path) -> None:
    """A delivery that takes longer than the pending timeout (four 429s, 1 s apart, against a 2 s
    timeout) must still be posted once: the sweep is for dead workers, not slow ones."""
    small = make_corpus(n_stories=10)
    hook = ScriptedWebhook(storm(first=4))
    s = settings_for(tmp_path, "fault-slow", stack, hook, alert_pending_timeout_s=2.0, alert_timeout_s=0.5, alert_max_wait_s=1.0)
    client = prepare(s)
    log = tmp_path / "worker.log"
    worker = start_worker(s, log)
    t0 = time.monotonic()
    try:
        produce(s, small)
        done = settle(client, s, len(small.records), timeout=180, worker=worker, log=log)
        got = outcome(client, s, small, hook, done - t0)
        report("slow delivery vs sweep", got, rejected_429=sum(1 for p in hook.requests if p.status == 429))
        assert_invariants(client, s, small, hook, got)
    finally:
        stop_worker(worker)
        hook.close()


def _max_excess(times: list[float], rate: float, burst: int) -> float:
    """The largest ``count - (burst + rate * span)`` over every window of consecutive posts: > 0
    means some stretch went faster than the token bucket allows."""
    worst = float("-inf")
    for i in range(len(times)):
        for j in range(i, len(times)):
            worst = max(worst, (j - i + 1) - (burst + rate * (times[j] - times[i])))
    return worst


def test_429_storm(stack: Any, tmp_path: Path) -> None:
    """The webhook answers 429 (Retry-After: 1) to its first 20 requests: every alert is still
    sent exactly once, later, at no more than Slack's one message per second (plus the burst)."""
    small = make_corpus(n_stories=20)
    hook = ScriptedWebhook(storm(first=20))
    # pending timeout above one delivery's worst case (6 posts, 1 s apart): a shorter one lets the
    # sweep take over a slow delivery (test_slow_delivery_is_not_taken_over_by_the_outbox_sweep)
    s = settings_for(tmp_path, "fault-429", stack, hook, alert_rate_per_s=1.0, alert_burst=3, alert_pending_timeout_s=30.0)
    client = prepare(s)
    log = tmp_path / "worker.log"
    worker = start_worker(s, log)
    t0 = time.monotonic()
    try:
        produce(s, small)
        done = settle(client, s, len(small.records), timeout=240, worker=worker, log=log)
        got = outcome(client, s, small, hook, done - t0)
        accepted = [p.at for p in hook.accepted]
        every = [p.at for p in hook.requests]
        excess = _max_excess(accepted, s.alert_rate_per_s, s.alert_burst)
        excess_all = _max_excess(every, s.alert_rate_per_s, s.alert_burst)
        span = accepted[-1] - accepted[0] if len(accepted) > 1 else 0.0
        report("429 storm", got, rejected_429=sum(1 for p in hook.requests if p.status == 429),
               accepted_span_s=round(span, 1), max_excess_accepted=round(excess, 2), max_excess_all=round(excess_all, 2))
        assert sum(1 for p in hook.requests if p.status == 429) == 20
        assert_invariants(client, s, small, hook, got)
        assert excess <= 0.05, f"posts went faster than {s.alert_rate_per_s}/s with a burst of {s.alert_burst}"
    finally:
        stop_worker(worker)
        hook.close()
