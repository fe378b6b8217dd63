"""``crosswire bench``: the pipeline measured against its physical limit, spaCy.

One run measures, on one machine and on one set of generated articles:

1. **the limit**: ``nlp.pipe`` throughput of the worker's own pipeline (:func:`pipeline.nlp.load_nlp`)
   in one process, bare and through the worker's :class:`~pipeline.analyse.Analyser` (normalise,
   spaCy, entities, link features, claims), and bare ``nlp.pipe`` in 2 processes at once;
2. **end to end**: the embedded broker, ``crosswire worker`` subprocesses and the embedded search
   server, from the first produce to the moment the articles index holds every article;
3. **the ratio** of 2 to 1 with the same number of processes;
4. **latency** produce → indexed and produce → alert at half the 1-worker throughput (a paced
   producer; produce times are read in this process, ``indexed_at`` and the alert's ``sent`` in the
   worker: one machine, one wall clock);
5. **scale-out**: 1 against 2 worker processes;
6. **memory**: peak RSS per worker, and RSS growth of one worker from N to ``growth_factor``·N
   articles;
7. **story linking cost**: :mod:`pipeline.benchlink`, run on request or read from its last output.

Articles are generated deterministically from the seeds and the ECB+ development file (when
present): each base text once with a new id, then copies with small perturbations (a count moved by
one or two, a paragraph dropped, another outlet), the way wire copies of one report differ.

Everything here is measurement code: it reads clocks, starts processes and talks to servers. The
pure parts (generation, percentiles, ratios, targets, the results document) are plain functions
with values in, values out, and are what the unit tests cover.
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import shutil
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .settings import Settings
from .types import stable_id

REPO = Path(__file__).resolve().parent.parent
SEEDS_FILE = REPO / "seeds" / "seeds.jsonl"
ECB_FILE = REPO.parent / "shared" / "data" / "ecbplus-dev.jsonl"
RESULTS_SCHEMA = 1

#: The issue's "Done when" thresholds.
MIN_E2E_RATIO = 0.9
MAX_P99_INDEXED_S = 1.0
MIN_SPEEDUP = 1.7
MAX_MEMORY_GROWTH = 0.10

#: progress(stage, done, total): total None when unknown.
ProgressFn = Callable[[str, int, "int | None"], None]

_OUTLETS = ("Reuters", "AP", "AFP", "BBC News", "Al Jazeera", "The Guardian", "CNN", "Bloomberg", "NPR", "DPA")
# A standalone count of one to three digits (years and long numbers are left alone: moving those
# changes what the story is about, not what a copy reports).
_SMALL_NUMBER = re.compile(r"(?<![\d.,:/-])\b([1-9]\d{0,2})\b(?![\d.,:/-]\d)")


def _noop(stage: str, done: int, total: int | None) -> None:
    pass


# ------------------------------------------------------------------------------------ articles


def load_base_articles(seeds: Path = SEEDS_FILE, ecb: Path | None = ECB_FILE) -> list[dict[str, Any]]:
    """The base texts: every seed article (``seeds.jsonl``, texts resolved), then every ECB+
    article when ``ecb`` exists (its gold ``story`` dropped). Each is a dict with ``id``, ``text``
    and, when known, ``title``, ``source`` and ``language``."""
    from .sources import expand, iter_records

    keep = ("id", "text", "title", "source", "language")
    out: list[dict[str, Any]] = []
    for rec in iter_records(expand([str(seeds)])):
        if rec.error is None:
            obj = json.loads(rec.raw)
            out.append({k: obj[k] for k in keep if obj.get(k)})
    if ecb is not None and ecb.is_file():
        with ecb.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    obj = json.loads(line)
                    out.append({k: obj[k] for k in keep if obj.get(k)})
    return [a for a in out if a.get("text")]


def _rng(seed: int, i: int) -> random.Random:
    return random.Random(int(stable_id("bench", str(seed), str(i)), 16))


def perturb(text: str, rng: random.Random) -> str:
    """A wire copy of ``text``: with probability 1/2 one small count moved by 1 or 2 (what makes
    reports of one story contradict each other), and with probability 1/2 one paragraph other than
    the first dropped (a shortened copy). Deterministic for a given ``rng`` state."""
    if rng.random() < 0.5:
        numbers = list(_SMALL_NUMBER.finditer(text))
        if numbers:
            m = rng.choice(numbers)
            value = max(1, int(m.group(1)) + rng.choice((-2, -1, 1, 2)))
            text = text[: m.start(1)] + str(value) + text[m.end(1):]
    if rng.random() < 0.5:
        lines = text.split("\n")
        body = [i for i in range(1, len(lines)) if lines[i].strip()]
        if len(body) >= 3:
            del lines[rng.choice(body)]
            text = "\n".join(lines)
    return text


def generate_article(base: Sequence[dict[str, Any]], i: int, seed: int) -> dict[str, Any]:
    """Article ``i`` of the benchmark stream: base text ``i`` (in a seeded order) for the first
    ``len(base)`` articles, a perturbed copy of a seeded choice after that. The id is new and
    unique per ``(seed, i)``; the result depends on nothing else."""
    if not base:
        raise ValueError("no base articles")
    rng = _rng(seed, i)
    order = list(range(len(base)))
    random.Random(seed).shuffle(order)
    src = base[order[i]] if i < len(base) else base[rng.randrange(len(base))]
    text = src["text"] if i < len(base) else perturb(src["text"], rng)
    art: dict[str, Any] = {"id": f"bench-{i:07d}-{stable_id('bench', str(seed), str(i), length=8)}", "text": text}
    if src.get("title"):
        art["title"] = src["title"]
    art["source"] = src.get("source") if i < len(base) and src.get("source") else rng.choice(_OUTLETS)
    if src.get("language"):
        art["language"] = src["language"]
    return art


def generate_articles(base: Sequence[dict[str, Any]], start: int, stop: int, seed: int) -> list[dict[str, Any]]:
    """Articles ``start`` .. ``stop - 1`` of the benchmark stream (see :func:`generate_article`)."""
    return [generate_article(base, i, seed) for i in range(start, stop)]


def to_records(articles: Sequence[dict[str, Any]]) -> list[Any]:
    """The articles as :class:`pipeline.sources.Record` values, ready for the producer."""
    from .sources import Record

    return [Record(f"bench:{a['id']}", json.dumps(a, ensure_ascii=False).encode("utf-8")) for a in articles]


# --------------------------------------------------------------------------------------- maths


def percentiles(values: Sequence[float], qs: Sequence[float] = (50, 95, 99)) -> dict[str, float]:
    """``{"p50": ..., "p95": ..., "p99": ..., "max": ..., "n": ...}`` by linear interpolation
    between closest ranks (numpy's default). Empty input gives NaN percentiles and ``n`` 0."""
    xs = sorted(float(v) for v in values)
    out: dict[str, float] = {}
    for q in qs:
        if not xs:
            out[f"p{q:g}"] = math.nan
            continue
        pos = (len(xs) - 1) * q / 100.0
        lo = math.floor(pos)
        hi = min(lo + 1, len(xs) - 1)
        out[f"p{q:g}"] = xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)
    out["max"] = xs[-1] if xs else math.nan
    out["n"] = len(xs)
    return out


def cpu_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """CPU seconds used between two :meth:`BenchStack.cpu_seconds` readings, process by process
    (None where a reading is missing)."""
    def d(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else round(b - a, 2)

    out: dict[str, Any] = {k: d(before.get(k), after.get(k)) for k in ("broker", "search", "bench")}
    out["workers"] = [d(a, b) for a, b in zip(before.get("workers", []), after.get("workers", []))]
    return out


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, or None when either is missing or the denominator is not positive."""
    if numerator is None or denominator is None or not denominator > 0:
        return None
    return numerator / denominator


def growth(small: float | None, large: float | None) -> float | None:
    """Relative growth from ``small`` to ``large`` (0.1 = 10 % more), None when unknown."""
    r = ratio(large, small)
    return None if r is None else r - 1.0


@dataclass(frozen=True)
class Rate:
    """``articles`` (holding ``words`` words) processed in ``seconds`` by ``processes`` processes."""

    label: str
    processes: int
    articles: int
    words: int
    seconds: float

    @property
    def articles_per_s(self) -> float:
        return self.articles / self.seconds if self.seconds > 0 else math.nan

    @property
    def words_per_s(self) -> float:
        return self.words / self.seconds if self.seconds > 0 else math.nan

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "articles_per_s": self.articles_per_s, "words_per_s": self.words_per_s}


@dataclass(frozen=True)
class Target:
    """One "Done when" criterion: ``value`` against ``limit`` (``at_least`` or at most)."""

    name: str
    value: float | None
    limit: float
    at_least: bool

    @property
    def met(self) -> bool | None:
        if self.value is None or math.isnan(self.value):
            return None
        return self.value >= self.limit if self.at_least else self.value <= self.limit

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}


def targets(results: dict[str, Any]) -> list[Target]:
    """The issue's acceptance criteria, read from a results document."""
    ratio_1 = (results.get("ratio") or {}).get("workers_1")
    lat = results.get("latency") or {}
    p99 = (lat.get("indexed_s") or {}).get("p99")
    speed = (results.get("scale_out") or {}).get("speedup")
    mem = (results.get("memory") or {}).get("growth")
    return [
        Target("end-to-end / limit, 1 process", ratio_1, MIN_E2E_RATIO, True),
        Target("p99 produce→indexed at half load (s)", p99, MAX_P99_INDEXED_S, False),
        Target("2 workers / 1 worker throughput", speed, MIN_SPEEDUP, True),
        Target(f"worker RSS growth N→{(results.get('settings') or {}).get('growth_factor', 5)}N", mem, MAX_MEMORY_GROWTH, False),
    ]


# --------------------------------------------------------------------------------------- limit


def prepare_text(article: dict[str, Any]) -> str:
    """The exact text the worker's Analyser gives ``nlp.pipe`` for ``article``."""
    from .normalise import normalise, split_title

    title, body = split_title(normalise(article["text"]), article.get("title"))
    return title + "\n\n" + body


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def measure_nlp_pipe(nlp: Any, texts: Sequence[str], words: int, *, batch_size: int, progress: ProgressFn = _noop) -> Rate:
    """Bare ``nlp.pipe`` over ``texts`` in this process (warm when the texts went through it
    before; :func:`measure_parallel_limit` with one process is the cold, worker-like limit)."""
    t0 = time.perf_counter()
    done = 0
    for chunk in _batches(texts, batch_size * 4):
        for _ in nlp.pipe(chunk, batch_size=batch_size):
            pass
        done += len(chunk)
        progress("limit: nlp.pipe, this process (warm)", done, len(texts))
    return Rate("nlp.pipe, this process (warm)", 1, len(texts), words, time.perf_counter() - t0)


def measure_analyser(nlp: Any, articles: Sequence[dict[str, Any]], *, batch_size: int,
                     progress: ProgressFn = _noop) -> tuple[Rate, dict[str, float]]:
    """The worker's Analyser (normalise, spaCy, entities, link features, claims) over
    ``articles`` in this process, in the worker's batches. Returns the rate and the seconds spent
    per Analyser stage (normalise, nlp, claims: the last includes entities and link features)."""
    from .analyse import Analyser
    from .article import parse_article
    from .metrics import Metrics

    metrics = Metrics.create()
    analyser = Analyser(nlp, metrics=metrics, batch_size=batch_size)
    parsed = [parse_article(json.dumps(a).encode()) for a in articles]
    words = 0
    t0 = time.perf_counter()
    done = 0
    for batch in _batches(parsed, batch_size):
        words += sum(a.words for a in analyser.analyse(batch))
        done += len(batch)
        progress("limit: Analyser, 1 process", done, len(parsed))
    seconds = time.perf_counter() - t0
    stages = {
        st: metrics.registry.get_sample_value("crosswire_stage_seconds_sum", {"stage": st}) or 0.0
        for st in ("normalise", "nlp", "claims")
    }
    return Rate("Analyser", 1, len(parsed), words, seconds), stages


def component_seconds(nlp: Any, texts: Sequence[str], *, batch_size: int) -> dict[str, float]:
    """Seconds each pipeline component takes over ``texts`` (tokenizer first), run one component
    at a time over the whole list: where the limit's time goes."""
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    docs = [nlp.make_doc(t) for t in texts]
    out["tokenizer"] = time.perf_counter() - t0
    for name, proc in nlp.pipeline:
        t0 = time.perf_counter()
        docs = list(proc.pipe(docs, batch_size=batch_size)) if hasattr(proc, "pipe") else [proc(d) for d in docs]
        out[name] = time.perf_counter() - t0
    return out


def measure_parallel_limit(texts: Sequence[str], words: int, processes: int, *, batch_size: int, env: dict[str, str] | None = None,
                           timeout_s: float = 1800.0, label: str | None = None) -> Rate:
    """Bare ``nlp.pipe`` in ``processes`` fresh processes at once, each on its share of
    ``texts``: the limit with that many processes. Every child loads the model first; the clock
    starts when all are loaded (they are released together) and stops when the last finishes."""
    with tempfile.TemporaryDirectory(prefix="crosswire-bench-") as tmp:
        path = Path(tmp) / "texts.jsonl"
        path.write_text("".join(json.dumps(t) + "\n" for t in texts), encoding="utf-8")
        share = -(-len(texts) // processes)
        children = [
            subprocess.Popen(
                [sys.executable, "-m", "pipeline.bench", "limit-child", str(path), str(k * share), str(min(len(texts), (k + 1) * share)),
                 str(batch_size)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
            )
            for k in range(processes)
        ]
        try:
            for c in children:
                assert c.stdout is not None
                if c.stdout.readline().strip() != "ready":
                    raise RuntimeError("a limit child failed to load the spaCy pipeline")
            t0 = time.perf_counter()
            for c in children:
                assert c.stdin is not None
                c.stdin.write("go\n")
                c.stdin.flush()
            for c in children:
                c.wait(timeout_s)
            seconds = time.perf_counter() - t0
            if any(c.returncode for c in children):
                raise RuntimeError("a limit child failed")
        finally:
            for c in children:
                if c.poll() is None:
                    c.kill()
    if label is None:
        label = "nlp.pipe, fresh process" if processes == 1 else f"nlp.pipe, {processes} processes"
    return Rate(label, processes, len(texts), words, seconds)


#: The environment of the single-threaded limit: without a BLAS thread pool the child is the only
#: thread of its process (see :func:`run_bench`).
SINGLE_THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def _limit_child(path: str, start: int, stop: int, batch_size: int) -> None:
    """Entry point of one :func:`measure_parallel_limit` process."""
    from .aliases import AliasTable
    from .nlp import load_nlp

    s = Settings()
    nlp = load_nlp(s.spacy_model, AliasTable.load(s.aliases_file))
    lines = Path(path).read_text(encoding="utf-8").splitlines()[start:stop]
    texts = [json.loads(x) for x in lines]
    list(nlp.pipe(texts[:2]))  # first-call set-up, as a worker has done before its first batch
    print("ready", flush=True)
    sys.stdin.readline()
    for _ in nlp.pipe(texts, batch_size=batch_size):
        pass


# -------------------------------------------------------------------------------------- memory


def process_memory(pid: int) -> dict[str, int]:
    """``{"rss": bytes, "peak_rss": bytes}`` of a live process from ``/proc/<pid>/status``
    (VmRSS, VmHWM); empty when it cannot be read (process gone, not Linux)."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out["rss" if key == "VmRSS" else "peak_rss"] = int(rest.split()[0]) * 1024
    except OSError:
        return {}
    return out


def process_cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds a live process has used, from ``/proc/<pid>/stat``; None when
    it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


# ------------------------------------------------------------------------------- webhook stand-in


class RecordingWebhook:
    """A local HTTP server standing in for Slack: answers 200 and records the receipt time of
    every POST (``time.time()``, this process's clock)."""

    def __init__(self) -> None:
        self.received: list[float] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hook.received.append(time.time())
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
        return f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/bench"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------------------------------------------ embedded stack


def _parse_time(value: str | None) -> float | None:
    if not value:
        return None
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def _samples_by_label(metrics_text: str, sample_name: str, label: str) -> dict[str, float]:
    """The samples named ``sample_name`` in a worker's /metrics text, keyed by one label."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(metrics_text):
        for sample in fam.samples:
            if sample.name == sample_name:
                out[sample.labels.get(label, "")] = sample.value
    return out


def metric_total(metrics_text: str, sample_name: str) -> float:
    """The sum of every sample named ``sample_name`` (all label values) in a /metrics text."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(s.value for fam in text_string_to_metric_families(metrics_text) for s in fam.samples if s.name == sample_name)


def state_bytes(metrics_text: str) -> dict[str, float]:
    """Bytes of table state by table (``crosswire_state_bytes``) from a worker's /metrics text."""
    return _samples_by_label(metrics_text, "crosswire_state_bytes", "table")


def stage_seconds(metrics_text: str) -> dict[str, float]:
    """Seconds per stage (``crosswire_stage_seconds_sum``) from a worker's /metrics text."""
    return _samples_by_label(metrics_text, "crosswire_stage_seconds_sum", "stage")


class StallError(RuntimeError):
    """The articles index stopped growing before every article arrived, or a worker exited."""


@dataclass
class BenchStack:
    """The embedded broker and search server with ``workers`` ``crosswire worker`` processes,
    started fresh (a run never sees another run's topics, state or documents)."""

    workers: int
    workdir: Path
    base: Settings
    alerts: str = "stdout"
    stack: Any = None
    settings: Settings | None = None
    procs: list[subprocess.Popen] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    busy_after_s: float | None = None  # workers still busy after the last article was indexed (rest_memory)
    client: Any = None
    webhook: RecordingWebhook | None = None
    produced: dict[str, float] = field(default_factory=dict)  # every article sent to this stack → produce time
    rss_samples: list[tuple[int, list[int]]] = field(default_factory=list)  # (articles indexed, RSS of each worker) per poll

    def __enter__(self) -> "BenchStack":
        from .demo import start_worker
        from .embedded import Stack, free_port
        from .kafka import ensure_topics
        from .search import ensure_templates, make_client

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.stack = Stack.start()
        try:
            extra: dict[str, Any] = {}
            if self.alerts == "webhook":
                self.webhook = RecordingWebhook()
                extra = {"slack_webhook_url": self.webhook.url, "slack_allowed_hosts": ("127.0.0.1",)}
            s = self.base.model_copy(update={
                "kafka_bootstrap": self.stack.broker.bootstrap,
                "es_url": self.stack.search.url,
                "es_compat": "plain-json",
                "kafka_rebalance_timeout_s": 1.0,
                "kafka_fetch_max_wait_ms": 50,  # as Stack.env(): the embedded broker waits the full fetch time
                "log_level": "warn",
                **extra,
            })
            if self.alerts == "stdout":
                s = s.model_copy(update={"slack_webhook_url": None, "slack_bot_token": None})
            self.settings = s
            ensure_topics(s)
            self.client = make_client(s)
            ensure_templates(self.client, s)
            for k in range(self.workers):
                port = free_port()
                ws = s.model_copy(update={"metrics_port": port, "data_dir": self.workdir / f"worker-{k}"})
                self.ports.append(port)
                self.procs.append(start_worker(ws, self.workdir / f"worker-{k}.log"))
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        from .demo import stop_worker

        for p in self.procs:
            stop_worker(p)
        if self.webhook is not None:
            self.webhook.close()
        if self.stack is not None:
            self.stack.stop()

    def _get(self, port: int, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:  # noqa: S310 - loopback
                return r.status, r.read().decode("utf-8", "replace")
        except OSError as e:
            return getattr(e, "code", 0) or 0, ""

    def check_alive(self) -> None:
        for k, p in enumerate(self.procs):
            if p.poll() is not None:
                tail = "\n".join((self.workdir / f"worker-{k}.log").read_text(errors="replace").splitlines()[-20:])
                raise StallError(f"worker {k} exited with code {p.returncode}; last lines of its log:\n{tail}")

    def wait_ready(self, *, timeout_s: float = 180.0, steady_s: float = 2.0) -> float:
        """Wait until every worker answers /readyz 200 (group joined, partitions assigned, not
        rebalancing) for ``steady_s`` seconds in a row. Returns the seconds waited."""
        t0 = time.monotonic()
        since: float | None = None
        while time.monotonic() - t0 < timeout_s:
            self.check_alive()
            if all(self._get(p, "/readyz")[0] == 200 for p in self.ports):
                since = since or time.monotonic()
                if time.monotonic() - since >= steady_s:
                    return time.monotonic() - t0
            else:
                since = None
            time.sleep(0.25)
        raise StallError(f"workers not ready within {timeout_s:.0f} s")

    def produce(self, articles: Sequence[dict[str, Any]], *, rate: float | None = None,
                progress: ProgressFn = _noop, stage: str = "produce") -> dict[str, float]:
        """Send ``articles`` to the articles topic, as fast as the producer goes or paced at
        ``rate`` per second; returns article id → produce time (``time.time()``, taken just
        before the article is handed to the producer)."""
        from .kafka import ArticleProducer

        assert self.settings is not None
        records = to_records(articles)
        sent: dict[str, float] = {}
        producer = ArticleProducer(self.settings)
        try:
            if rate is None:
                ids = iter([a["id"] for a in articles])
                first = time.time()
                sent[next(ids)] = first

                def tick(n: int) -> None:
                    nxt = next(ids, None)
                    if nxt is not None:
                        sent[nxt] = time.time()
                    progress(stage, len(sent), len(articles))

                producer.send(records, on_progress=tick)
            else:
                t0 = time.monotonic()
                for k, (a, rec) in enumerate(zip(articles, records)):
                    delay = t0 + k / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    sent[a["id"]] = time.time()
                    producer.send([rec])
                    progress(stage, k + 1, len(articles))
        finally:
            producer.close()
        self.produced.update(sent)
        return sent

    def count(self, index: str = "articles") -> int:
        from .search import count

        assert self.settings is not None
        return count(self.client, self.settings, index)

    def wait_indexed(self, total: int, *, stage: str, progress: ProgressFn = _noop, stall_s: float = 180.0,
                     poll_s: float = 0.1) -> float:
        """Wait until the articles index holds ``total`` documents; returns ``time.time()`` when
        that was first seen. Samples the workers' RSS at every new count. Raises :class:`StallError` when the count does not move for
        ``stall_s`` seconds or a worker exits."""
        last, moved = -1, time.monotonic()
        while True:
            n = self.count()
            now = time.time()
            progress(stage, min(n, total), total)
            if not self.rss_samples or self.rss_samples[-1][0] != n:
                self.rss_samples.append((n, [m.get("rss", 0) for m in self.memory()]))
            if n >= total:
                return now
            if n != last:
                last, moved = n, time.monotonic()
            elif time.monotonic() - moved > stall_s:
                raise StallError(f"{stage}: the articles index stayed at {n} of {total} for {stall_s:.0f} s")
            self.check_alive()
            time.sleep(poll_s)

    def wait_idle(self, *, quiet_s: float = 6.0, timeout_s: float = 900.0) -> float:
        """Wait until no worker has done any work for ``quiet_s`` (the stage-time counters of every
        worker's /metrics unchanged). The last article indexed is not the end of the work: the
        story stage (claims, contradictions, alerts) can still be working through its backlog after
        a run at full speed. Returns the seconds the workers were still busy."""
        t0 = time.monotonic()
        last: list[float] | None = None
        changed = t0
        while time.monotonic() - t0 < timeout_s:
            self.check_alive()
            now = [round(sum(stage_seconds(self._get(p, "/metrics")[1]).values()), 6) for p in self.ports]
            if now != last:
                last, changed = now, time.monotonic()
            elif time.monotonic() - changed >= quiet_s:
                break
            time.sleep(0.5)
        return changed - t0

    def rest_memory(self, *, settle_s: float = 12.0, window_s: float = 3.0) -> list[int]:
        """Each worker's RSS at rest: ``settle_s`` after the work stopped (:meth:`wait_idle`; a
        worker hands its freed heap back to the OS once it has been idle for a timer tick,
        :mod:`pipeline.memory`), the lowest reading over ``window_s``. What the worker holds,
        rather than where the last batch's buffers happened to leave the heap."""
        self.busy_after_s = self.wait_idle()
        deadline = time.monotonic() + settle_s
        while time.monotonic() < deadline:
            self.check_alive()
            time.sleep(0.5)
        lowest = [m.get("rss", 0) for m in self.memory()]
        end = time.monotonic() + window_s
        while time.monotonic() < end:
            time.sleep(0.5)
            lowest = [min(a, m.get("rss", 0) or a) for a, m in zip(lowest, self.memory(), strict=True)]
        return lowest

    def probe_search_writes(self, *, limit: int = 10_000, progress: ProgressFn = _noop) -> dict[str, Any]:
        """The search server's own write latency, without Crosswire: the article documents this
        run indexed, read back and written again one per bulk request (as a worker writes at half
        load) into a scratch index under the same template, each request timed; the scratch index
        is deleted afterwards. A server that pauses while it merges its segments (the embedded
        one does, under its write lock) shows those pauses here, and they bound the latency p99
        from below."""
        assert self.settings is not None
        src_index = self.settings.index("articles")
        probe = f"{src_index}-probe"
        resp = self.client.search(index=src_index, size=min(limit, 10_000), sort=[{"indexed_at": {"order": "asc"}}, {"id": {"order": "asc"}}],
                                  query={"match_all": {}})
        docs = [(h["_id"], h["_source"]) for h in resp["hits"]["hits"]]
        durations: list[float] = []
        stage = f"search server alone: {len(docs):,} writes"
        try:
            for k, (doc_id, source) in enumerate(docs):
                t0 = time.perf_counter()
                self.client.bulk(operations=[{"index": {"_index": probe, "_id": doc_id}}, source])
                durations.append(time.perf_counter() - t0)
                progress(stage, k + 1, len(docs))
        finally:
            self.client.options(ignore_status=404).indices.delete(index=probe)
        return {"documents": len(docs), "write_s": percentiles(durations), "over_1s": sum(1 for d in durations if d > 1.0),
                "slowest_at": max(range(len(durations)), key=durations.__getitem__) + 1 if durations else None}

    def wait_quiet(self, index: str, *, quiet_s: float = 3.0, timeout_s: float = 60.0) -> int:
        """Wait until the count of ``index`` has not changed for ``quiet_s`` seconds."""
        t0 = time.monotonic()
        last, since = -1, time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            n = self.count(index)
            if n != last:
                last, since = n, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                break
            time.sleep(0.25)
        return last

    def indexed_times(self, ids: Sequence[str]) -> dict[str, float]:
        """Article id → its ``indexed_at`` (epoch seconds), for the ids found."""
        assert self.settings is not None
        out: dict[str, float] = {}
        for chunk in _batches(list(ids), 500):
            resp = self.client.search(index=self.settings.index("articles"), size=len(chunk), source=["id", "indexed_at"],
                                      query={"ids": {"values": list(chunk)}})
            for hit in resp["hits"]["hits"]:
                t = _parse_time(hit["_source"].get("indexed_at"))
                if t is not None:
                    out[hit["_id"]] = t
        return out

    def topic_times(self, name: str, article_of: Callable[[bytes | None, bytes], str | None]) -> dict[str, float]:
        """Article id → the timestamp (epoch seconds) of its message on topic ``name``, read from
        the start of every partition up to the end offsets seen when called. ``article_of(key,
        value)`` names the article a message carries."""
        from kafka import KafkaConsumer, TopicPartition

        from .kafka import client_options

        assert self.settings is not None
        topic = self.settings.topic(name)
        consumer = KafkaConsumer(**client_options(self.settings), enable_auto_commit=False, group_id=None)
        out: dict[str, float] = {}
        try:
            tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            if not tps:
                return out
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            ends = consumer.end_offsets(tps)
            deadline = time.monotonic() + 60
            while any(consumer.position(tp) < ends[tp] for tp in tps) and time.monotonic() < deadline:
                for batch in consumer.poll(timeout_ms=200).values():
                    for m in batch:
                        aid = article_of(m.key, m.value)
                        if aid is not None:
                            out[aid] = m.timestamp / 1000.0
        finally:
            consumer.close()
        return out

    def alert_records(self) -> list[dict[str, Any]]:
        assert self.settings is not None
        from elasticsearch import NotFoundError

        try:
            resp = self.client.search(index=self.settings.index("alerts"), size=10_000, query={"match_all": {}})
        except NotFoundError:
            return []
        return [h["_source"] for h in resp["hits"]["hits"]]

    def memory(self) -> list[dict[str, int]]:
        return [process_memory(p.pid) for p in self.procs]

    def cpu_seconds(self) -> dict[str, Any]:
        """CPU seconds used so far by each process of the stack: where the machine's time goes."""
        t = os.times()
        return {
            "workers": [process_cpu_seconds(p.pid) for p in self.procs],
            "broker": process_cpu_seconds(self.stack.broker.process.pid),
            "search": process_cpu_seconds(self.stack.search.server.pid),
            "bench": t.user + t.system,  # this process: the producer, index polling, the webhook
        }

    def _metrics_texts(self) -> list[str]:
        """Each worker's /metrics text (the workers that answer)."""
        return [text for status, text in (self._get(port, "/metrics") for port in self.ports) if status == 200]

    def _summed(self, parse: Callable[[str], dict[str, float]]) -> dict[str, float]:
        """``parse`` of each worker's /metrics text, summed key by key over the workers."""
        total: dict[str, float] = {}
        for text in self._metrics_texts():
            for k, v in parse(text).items():
                total[k] = total.get(k, 0.0) + v
        return total

    def state_bytes(self) -> dict[str, float]:
        """Bytes of table state by table, summed over the workers (the worker refreshes the
        gauge every 5 s: read it at rest)."""
        return self._summed(state_bytes)

    def reseeks(self) -> int:
        """Partitions the workers re-read because they looked stalled (``crosswire_partition_reseeks_total``):
        0 in a healthy run; each one processes the partition's messages from its committed offset again."""
        return int(sum(metric_total(text, "crosswire_partition_reseeks_total") for text in self._metrics_texts()))

    def stage_seconds(self) -> dict[str, float]:
        """Seconds per stage summed over the workers (their Prometheus histograms)."""
        return self._summed(stage_seconds)


# ---------------------------------------------------------------------------------- measurements


def latencies_indexed(produced: dict[str, float], indexed: dict[str, float]) -> list[float]:
    """Seconds from produce to ``indexed_at`` for every article in both maps."""
    return [indexed[a] - t for a, t in produced.items() if a in indexed]


def latencies_alert(produced: dict[str, float], alerts: Sequence[dict[str, Any]], earlier: dict[str, float] | None = None) -> list[float]:
    """Seconds from the produce of the article that completed each alert's contradiction (the
    last produced of its sides' articles) to the alert's delivery (``sent``, else ``created``).
    An alert counts when that article is one of ``produced`` (this phase); its other articles may
    be from ``earlier`` phases. Alerts naming an article of neither are left out."""
    known = {**(earlier or {}), **produced}
    out: list[float] = []
    for a in alerts:
        at = _parse_time(a.get("sent")) or _parse_time(a.get("created"))
        try:
            body = json.loads(a.get("body") or "{}")
        except ValueError:
            continue
        arts = {x for side in body.get("sides", []) for x in side.get("articles", [])}
        if at is None or not arts or not arts <= known.keys():
            continue
        trigger = max(arts, key=lambda x: known[x])
        if trigger in produced:
            out.append(at - produced[trigger])
    return out


def hop_latencies(produced: dict[str, float], hops: Sequence[tuple[str, dict[str, float]]]) -> dict[str, dict[str, Any]]:
    """Percentiles of the time between consecutive hops of each article: ``hops`` is a list of
    (name, article id → time) in pipeline order, after ``produced``. Keys are "A → B". A hop whose
    times equal the previous hop's for most articles carries the upstream message timestamp (the
    worker forwards it) rather than its own: it is reported as ``{"carried": True, "n": 0}``, and
    the next hop is measured from the last real one."""
    out: dict[str, dict[str, Any]] = {}
    prev_name, prev = "produce", produced
    for name, times in hops:
        both = [a for a in produced if a in times and a in prev]
        if both and prev is not produced and sum(times[a] == prev[a] for a in both) > len(both) / 2:
            out[f"{prev_name} → {name}"] = {"carried": True, "n": 0}
            continue
        out[f"{prev_name} → {name}"] = percentiles([times[a] - prev[a] for a in both])
        prev_name, prev = name, times
    return out


def _linked_article(key: bytes | None, value: bytes) -> str | None:
    try:
        return str(json.loads(value)["analysed"]["article"]["id"])
    except (ValueError, KeyError, TypeError):
        return None


@dataclass
class BenchOptions:
    articles: int = 2000
    latency_articles: int = 400
    load: float = 0.5  # latency is measured at this share of the 1-worker throughput
    growth_factor: float = 5.0  # memory growth from N to growth_factor·N; <= 1 skips it
    max_workers: int = 2
    limit_processes: bool = True  # also measure the limit with max_workers processes
    single_thread_limit: bool = True  # also measure the limit in a process with no second thread
    profile_articles: int = 200  # texts for the per-component breakdown; 0 skips it
    alerts: str = "stdout"  # "stdout" or "webhook" (a local stand-in for Slack)
    seed: int = 20240601
    ecb: Path | None = ECB_FILE
    links: bool = False  # run pipeline.benchlink (minutes); else read out/link-cost.json when there
    link_sizes: tuple[int, ...] = (1000, 10_000, 100_000)
    out: Path = Path("bench")
    stall_s: float = 180.0
    search_probe: bool = True  # time the search server alone, one article per bulk (latency's floor)
    rest_s: float = 12.0  # wait before worker RSS is read at rest (two ticks of the worker's memory timer)

    @classmethod
    def quick(cls, **kw: Any) -> "BenchOptions":
        """Small settings for a smoke test: 40 articles, 20 for latency, growth to 2N."""
        base = {"articles": 40, "latency_articles": 20, "growth_factor": 2.0, "profile_articles": 20, "stall_s": 90.0}
        base.update(kw)
        return cls(**base)


def machine_info() -> dict[str, Any]:
    """CPU model, cores, memory, OS, Python and library versions, and the load when measured."""
    import spacy

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    mem = 0
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            mem = int(next(ln for ln in fh if ln.startswith("MemTotal")).split()[1]) * 1024
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_bytes": mem,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "os": platform.platform(),
        "python": platform.python_version(),
        "spacy": spacy.__version__,
        "hostname": platform.node(),
    }


def _run_workers(opts: BenchOptions, base: Settings, workers: int, articles: Sequence[dict[str, Any]], words: int,
                 workdir: Path, progress: ProgressFn, extra: Callable[[BenchStack, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """One fresh embedded stack with ``workers`` workers: all ``articles`` produced at once, timed
    from the first produce to the moment the index holds them all; then ``extra`` (more phases on
    the same warm stack). Returns the run's figures."""
    label = f"{workers} worker{'s' * (workers > 1)}"
    out: dict[str, Any] = {"workers": workers}
    with BenchStack(workers, workdir / f"w{workers}", base, alerts=opts.alerts) as bs:
        progress(f"{label}: starting", 0, None)
        out["ready_s"] = bs.wait_ready()
        progress(f"{label}: starting", 1, 1)
        cpu0 = bs.cpu_seconds()
        produced = bs.produce(articles, progress=progress, stage=f"{label}: produce")
        end = bs.wait_indexed(len(articles), stage=f"{label}: indexed", progress=progress, stall_s=opts.stall_s)
        out["cpu_s"] = cpu_delta(cpu0, bs.cpu_seconds())
        first = min(produced.values())
        rate = Rate(f"end to end, {label}", workers, len(articles), words, end - first)
        out["rate"] = rate.to_json()
        out["produce_s"] = max(produced.values()) - first
        lat = latencies_indexed(produced, bs.indexed_times(list(produced)))
        out["indexed_s_at_full_load"] = percentiles(lat)
        out["memory_at_n"] = bs.memory()
        out["stage_seconds"] = bs.stage_seconds()
        if workers == 1 and opts.growth_factor > 1:
            out["rest_rss_at_n"] = bs.rest_memory(settle_s=opts.rest_s)
            out["busy_after_indexed_s_at_n"] = bs.busy_after_s
            out["state_bytes_at_n"] = bs.state_bytes()
        if extra is not None:
            extra(bs, out)
        out["rss_samples"] = bs.rss_samples
        out["memory_end"] = bs.memory()
        out["reseeks"] = bs.reseeks()
        try:
            from .kafka import read_topic

            assert bs.settings is not None
            out["dead_letters"] = len(read_topic(bs.settings, "dead-letters", timeout_s=2.0))
        except Exception:  # noqa: BLE001 - a count for the report, not a measurement
            out["dead_letters"] = None
    return out


def _latency_phase(opts: BenchOptions, articles: Sequence[dict[str, Any]], rate: float, progress: ProgressFn) -> Callable[[BenchStack, dict[str, Any]], None]:
    def run(bs: BenchStack, out: dict[str, Any]) -> None:
        before = bs.count()
        alerts_before = {a["id"] for a in bs.alert_records()}
        t0 = time.time()
        produced = bs.produce(articles, rate=rate, progress=progress, stage=f"latency: produce at {rate:.1f}/s")
        achieved = len(articles) / (time.time() - t0) if len(articles) > 1 else math.nan
        bs.wait_indexed(before + len(articles), stage="latency: indexed", progress=progress, stall_s=opts.stall_s)
        bs.wait_quiet("alerts")
        indexed = latencies_indexed(produced, bs.indexed_times(list(produced)))
        new_alerts = [a for a in bs.alert_records() if a["id"] not in alerts_before]
        alert_lat = latencies_alert(produced, new_alerts, bs.produced)
        by_key: Callable[[bytes | None, bytes], str | None] = lambda k, v: k.decode() if k else None  # noqa: E731
        indexed_at = bs.indexed_times(list(produced))
        hops = [("articles topic", bs.topic_times("articles", by_key)), ("analysed", bs.topic_times("analysed", by_key)), ("linked", bs.topic_times("linked", _linked_article)),
                ("indexed", indexed_at)]
        out["latency"] = {
            "articles": len(articles),
            "target_rate": rate,
            "achieved_rate": achieved,
            "load": opts.load,
            "indexed_s": percentiles(indexed),
            "alert_s": percentiles(alert_lat),
            "hops_s": hop_latencies(produced, hops),
            "alerts": len(new_alerts),
            "alert_channel": opts.alerts,
            "webhook_posts": len(bs.webhook.received) if bs.webhook else None,
        }
        if opts.search_probe:
            out["latency"]["search_alone"] = bs.probe_search_writes(progress=progress)
    return run


def _growth_phase(opts: BenchOptions, articles: Sequence[dict[str, Any]], target_total: int, progress: ProgressFn) -> Callable[[BenchStack, dict[str, Any]], None]:
    def run(bs: BenchStack, out: dict[str, Any]) -> None:
        before = bs.count()
        if articles:
            bs.produce(articles, progress=progress, stage="memory: produce")
            bs.wait_indexed(before + len(articles), stage=f"memory: indexed (to {target_total:,})", progress=progress,
                            stall_s=opts.stall_s)
        out["memory_at_growth"] = bs.memory()
        out["growth_articles"] = bs.count()
        out["rest_rss_at_growth"] = bs.rest_memory(settle_s=opts.rest_s)
        out["busy_after_indexed_s_at_growth"] = bs.busy_after_s
        out["state_bytes_at_growth"] = bs.state_bytes()
    return run


def _link_cost(opts: BenchOptions, progress: ProgressFn) -> dict[str, Any] | None:
    """Story-linking cost: run :mod:`pipeline.benchlink` when asked, else its last results."""
    from . import benchlink

    if opts.links:
        res = benchlink.run_benchmark(opts.link_sizes, progress=lambda st, d, t: progress(f"links: {st}", d, t))
        benchlink.write_json(res, opts.out / "link-cost.json")
        benchlink.write_plot(res, opts.out / "link-cost.png")
        return {"source": "measured in this run", **res.to_json()}
    path = opts.out / "link-cost.json"
    if path.is_file():
        when = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).isoformat()
        return {"source": f"{path} (from `crosswire bench-links`, {when})", **json.loads(path.read_text(encoding="utf-8"))}
    return None


def run_bench(opts: BenchOptions, *, progress: ProgressFn = _noop, base: Settings | None = None) -> dict[str, Any]:
    """Run every measurement and return the results document (see :func:`write_results`)."""
    from .aliases import AliasTable
    from .nlp import load_nlp

    base = base or Settings()
    n = opts.articles
    if n < 2:
        raise ValueError("need at least 2 articles")
    started = datetime.now(timezone.utc)
    base_articles = load_base_articles(ecb=opts.ecb)
    lat_n = max(0, opts.latency_articles)
    grow_total = int(round(opts.growth_factor * n)) if opts.growth_factor > 1 else 0
    total = max(n + lat_n, grow_total)
    progress("generate articles", 0, total)
    articles = generate_articles(base_articles, 0, total, opts.seed)
    progress("generate articles", total, total)
    main, lat_articles, grow_articles = articles[:n], articles[n:n + lat_n], articles[n + lat_n:grow_total]

    results: dict[str, Any] = {
        "schema": RESULTS_SCHEMA,
        "started": started.isoformat(),
        "machine": machine_info(),
        "settings": {
            "articles": n,
            "latency_articles": lat_n,
            "load": opts.load,
            "growth_factor": opts.growth_factor,
            "growth_articles": grow_total,
            "max_workers": opts.max_workers,
            "alerts": opts.alerts,
            "seed": opts.seed,
            "base_articles": len(base_articles),
            "ecb": str(opts.ecb) if opts.ecb and opts.ecb.is_file() else None,
            "spacy_model": base.spacy_model,
            "batch_size": base.batch_size,
            "batch_within_s": base.batch_within_s,
            "topic_partitions": base.topic_partitions,
        },
    }

    loads: dict[str, list[float]] = {"start": list(os.getloadavg())}
    results["load_average"] = loads  # 1, 5, 15-minute load at each phase: other work on the machine shows here
    # 1. the limit
    nlp = load_nlp(base.spacy_model, AliasTable.load(base.aliases_file))
    results["settings"]["pipeline"] = list(nlp.pipe_names)
    texts = [prepare_text(a) for a in main]
    list(nlp.pipe(texts[:2]))  # warm-up, as a worker's first batch
    analyser_rate, analyser_stages = measure_analyser(nlp, main, batch_size=base.batch_size, progress=progress)
    words = analyser_rate.words
    # In this process the texts have been through the pipeline once already (the Analyser pass):
    # its vocabulary, lemma and attribute caches are warm, which a worker's are not. Kept for
    # information; the limit itself is measured below in a fresh process, as the workers run.
    warm = measure_nlp_pipe(nlp, texts, words, batch_size=base.batch_size, progress=progress)
    limit: dict[str, Any] = {"nlp_pipe_1_warm": warm.to_json(), "analyser_1": analyser_rate.to_json(), "analyser_stage_seconds": analyser_stages}
    if opts.profile_articles > 0:
        progress("limit: per component", 0, None)
        limit["component_seconds"] = component_seconds(nlp, texts[:opts.profile_articles], batch_size=base.batch_size)
        limit["component_articles"] = min(opts.profile_articles, len(texts))
        progress("limit: per component", 1, 1)
    del nlp
    # the limit: a fresh process that loads the pipeline and reads the texts once, like a worker
    progress("limit: nlp.pipe, 1 fresh process", 0, None)
    limit["nlp_pipe_1"] = measure_parallel_limit(texts, words, 1, batch_size=base.batch_size).to_json()
    progress("limit: nlp.pipe, 1 fresh process", 1, 1)
    if opts.single_thread_limit:
        # glibc makes every mutex an atomic operation once a process has started a second thread.
        # spaCy 3.8.6 takes a few thousand locks per article, so this limit matches the one above;
        # spaCy's later cp311 wheels took 1.3 million (the GIL, inside the parser's nogil code) and
        # ran 12-19% slower in any process that had ever started a thread, as every worker has. A
        # gap between the two limits is the sign of such a build.
        stage = "limit: nlp.pipe, 1 single-threaded process"
        progress(stage, 0, None)
        limit["nlp_pipe_1_single_thread"] = measure_parallel_limit(
            texts, words, 1, batch_size=base.batch_size, env={**os.environ, **SINGLE_THREAD_ENV},
            label="nlp.pipe, fresh single-threaded process (1 BLAS thread)").to_json()
        progress(stage, 1, 1)
    if opts.limit_processes and opts.max_workers > 1:
        progress(f"limit: nlp.pipe, {opts.max_workers} processes", 0, None)
        limit[f"nlp_pipe_{opts.max_workers}"] = measure_parallel_limit(texts, words, opts.max_workers, batch_size=base.batch_size).to_json()
        progress(f"limit: nlp.pipe, {opts.max_workers} processes", 1, 1)
    results["limit"] = limit

    # 2, 4, 6: one worker, then latency and memory growth on the same warm stack
    # Worker logs and state stay in OUT/run/ for a look after the run (bench/ is not versioned).
    workdir = opts.out / "run"
    shutil.rmtree(workdir, ignore_errors=True)

    def after_one(bs: BenchStack, out: dict[str, Any]) -> None:
        rate = opts.load * out["rate"]["articles_per_s"]
        if lat_articles and rate > 0:
            _latency_phase(opts, lat_articles, rate, progress)(bs, out)
        if grow_total:
            _growth_phase(opts, grow_articles, grow_total, progress)(bs, out)

    loads["before end to end"] = list(os.getloadavg())
    runs = {"workers_1": _run_workers(opts, base, 1, main, words, workdir, progress, extra=after_one)}
    # 5. scale-out
    if opts.max_workers > 1:
        loads[f"before {opts.max_workers} workers"] = list(os.getloadavg())
        runs[f"workers_{opts.max_workers}"] = _run_workers(opts, base, opts.max_workers, main, words, workdir, progress)
    loads["end"] = list(os.getloadavg())
    results["end_to_end"] = runs
    results.update(summarise(results))
    results["links"] = _link_cost(opts, progress)
    results["targets"] = [t.to_json() for t in targets(results)]
    results["finished"] = datetime.now(timezone.utc).isoformat()
    return results


def window_rss(samples: Sequence[Sequence[Any]], lo: int, hi: int) -> float | None:
    """Median RSS of worker 0 over the samples ``(articles indexed, [rss, ...])`` taken with
    ``lo < articles indexed <= hi``; None when there are none."""
    xs = sorted(float(r[0]) for c, r in samples if lo < c <= hi and r and r[0])
    if not xs:
        return None
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """The derived figures (ratio, latency, scale-out, memory) from the raw runs of a results
    document: pure arithmetic, so that it can be checked without running anything."""
    limit = results["limit"]
    runs = results["end_to_end"]
    one = runs["workers_1"]
    e2e1 = one["rate"]["articles_per_s"]
    out: dict[str, Any] = {"ratio": {"workers_1": ratio(e2e1, limit["nlp_pipe_1"]["articles_per_s"]),
                                     "workers_1_vs_analyser": ratio(e2e1, limit["analyser_1"]["articles_per_s"])}}
    single = limit.get("nlp_pipe_1_single_thread")
    if single:
        out["ratio"]["workers_1_vs_single_thread"] = ratio(e2e1, single["articles_per_s"])
    many = [k for k in runs if k != "workers_1"]
    if many:
        k = many[0]
        w = int(k.split("_")[1])
        e2e_w = runs[k]["rate"]["articles_per_s"]
        lim_w = limit.get(f"nlp_pipe_{w}")
        out["ratio"][k] = ratio(e2e_w, lim_w["articles_per_s"]) if lim_w else None
        out["scale_out"] = {"workers": [1, w], "articles_per_s": [e2e1, e2e_w], "speedup": ratio(e2e_w, e2e1),
                            "limit_speedup": ratio(lim_w["articles_per_s"], limit["nlp_pipe_1"]["articles_per_s"]) if lim_w else None}
    out["latency"] = one.get("latency")
    n = results["settings"]["articles"]
    big = one.get("growth_articles")
    samples = one.get("rss_samples") or []
    # RSS swings by a batch's worth of spaCy buffers from one poll to the next: compare medians over
    # the last half-N articles before N and before the end rather than two single readings.
    rss_n = window_rss(samples, n // 2, n) or (one.get("memory_at_n") or [{}])[0].get("rss")
    grown = one.get("memory_at_growth")
    rss_g = (window_rss(samples, big - n // 2, big) or (grown[0].get("rss") if grown else None)) if big and grown else None
    rest_n, rest_g = (one.get("rest_rss_at_n") or [None])[0], (one.get("rest_rss_at_growth") or [None])[0]
    at_rest = bool(rest_n and rest_g and grown)
    out["memory"] = {
        "articles_small": n,
        "articles_large": big if grown else None,
        # the target's figure: at rest when measured, else the medians under load
        "rss_small": rest_n if at_rest else rss_n,
        "rss_large": rest_g if at_rest else rss_g,
        "growth": growth(rest_n, rest_g) if at_rest else growth(rss_n, rss_g),
        "method": ("worker RSS at rest, at N and at 5N: after every stage of the worker went quiet (not only the article "
                   "index) and it returned its freed heap to the OS (pipeline.memory), lowest reading over 3 s" if at_rest else
                   "median worker RSS over the articles (N/2, N] and (5N - N/2, 5N], read at each poll of the index"),
        "rss_small_under_load": rss_n,
        "rss_large_under_load": rss_g,
        "growth_under_load": growth(rss_n, rss_g),
        "peak_rss_per_worker": {k: [m.get("peak_rss") for m in r.get("memory_end", [])] for k, r in runs.items()},
        # the bounded per-story state among it (serialized table bytes, read at rest)
        "state_bytes_small": one.get("state_bytes_at_n"),
        "state_bytes_large": one.get("state_bytes_at_growth") if grown else None,
        # how long the worker was still busy (story stage, alerts) after the last article was indexed
        "busy_after_indexed_s_small": one.get("busy_after_indexed_s_at_n"),
        "busy_after_indexed_s_large": one.get("busy_after_indexed_s_at_growth") if grown else None,
    }
    return out


# -------------------------------------------------------------------------------------- outputs


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None  # JSON has no NaN or Infinity
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_results(results: dict[str, Any], path: Path) -> Path:
    """Write the results document as JSON (NaN and infinities become null)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_jsonable(results), indent=2) + "\n", encoding="utf-8")
    return path


def write_plots(results: dict[str, Any], path: Path) -> Path:
    """One PNG, three panels: throughput (limit against end to end, per process count), the
    latency distribution at half load, and worker RSS against articles processed.
    matplotlib is imported here with the Agg backend, as in :mod:`pipeline.benchlink`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4.4))
    limit, runs = results["limit"], results["end_to_end"]
    bars: list[tuple[str, float, str]] = [
        ("nlp.pipe\n1 proc", limit["nlp_pipe_1"]["articles_per_s"], "tab:gray"),
        ("Analyser\n1 proc", limit["analyser_1"]["articles_per_s"], "tab:olive"),
        ("end to end\n1 worker", runs["workers_1"]["rate"]["articles_per_s"], "tab:blue"),
    ]
    if "nlp_pipe_1_single_thread" in limit:
        bars.insert(1, ("nlp.pipe 1 proc\n1 thread", limit["nlp_pipe_1_single_thread"]["articles_per_s"], "tab:gray"))
    for k, r in runs.items():
        if k == "workers_1":
            continue
        w = r["workers"]
        if f"nlp_pipe_{w}" in limit:
            bars.append((f"nlp.pipe\n{w} procs", limit[f"nlp_pipe_{w}"]["articles_per_s"], "tab:gray"))
        bars.append((f"end to end\n{w} workers", r["rate"]["articles_per_s"], "tab:blue"))
    ax1.bar([b[0] for b in bars], [b[1] or 0 for b in bars], color=[b[2] for b in bars])
    for i, b in enumerate(bars):
        ax1.annotate(f"{b[1]:.1f}", (i, b[1] or 0), ha="center", va="bottom", fontsize=8)
    ax1.set_ylabel("articles / s")
    r1 = (results.get("ratio") or {}).get("workers_1")
    ax1.set_title(f"throughput (end to end / limit, 1 process: {r1:.2f})" if r1 else "throughput", fontsize=9)
    ax1.tick_params(axis="x", labelsize=7)

    lat = results.get("latency") or {}
    qs = ("p50", "p95", "p99")
    for j, (key, lbl) in enumerate((("indexed_s", "produce → indexed"), ("alert_s", "produce → alert"))):
        p = lat.get(key) or {}
        if p.get("n"):
            ax2.bar([k + (j - 0.5) * 0.38 for k in range(len(qs))], [p[q] or 0 for q in qs], width=0.38, label=f"{lbl} (n={p['n']})")
    ax2.set_xticks(range(len(qs)), qs)
    ax2.axhline(MAX_P99_INDEXED_S, color="red", linestyle=":", label="p99 target")
    ax2.set_ylabel("seconds")
    ax2.set_title(f"latency at {lat.get('load', 0.5):.0%} load ({lat.get('target_rate') or 0:.1f} articles/s)", fontsize=9)
    ax2.tick_params(axis="x", labelsize=7)
    ax2.legend(fontsize=7)

    samples = runs["workers_1"].get("rss_samples") or []
    if samples:
        ax3.plot([s[0] for s in samples], [(s[1][0] if s[1] else 0) / 1e6 for s in samples], ".-", markersize=2)
    small = results["settings"].get("articles")
    if small:
        ax3.axvline(small, color="gray", linestyle=":", label="N")
        ax3.legend(fontsize=7)
    mem = results.get("memory") or {}
    g = mem.get("growth")
    ax3.set_xlabel("articles indexed (1 worker: throughput, latency, growth phases)")
    ax3.set_ylabel("worker RSS, MB")
    ax3.set_title(f"worker memory; growth N→{mem.get('articles_large') or '?'}: {g:+.1%}" if g is not None else "worker memory", fontsize=9)
    ax3.grid(True, alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _f(v: Any, fmt: str = "{:,.1f}") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)


def results_table(results: dict[str, Any]) -> Any:  # -> rich.table.Table
    """The headline figures and the "Done when" verdicts as one rich table."""
    from rich.table import Table

    t = Table(title=f"crosswire bench ({results['settings']['articles']:,} articles, {results['machine']['cores']} cores)")
    t.add_column("measure")
    t.add_column("articles/s", justify="right")
    t.add_column("words/s", justify="right")
    t.add_column("note")
    limit, runs = results["limit"], results["end_to_end"]
    for key, r in list(limit.items()):
        if isinstance(r, dict) and "articles_per_s" in r:
            t.add_row(f"limit: {r['label']}", _f(r["articles_per_s"]), _f(r["words_per_s"], "{:,.0f}"), f"{r['processes']} process(es)")
    for key, r in runs.items():
        peak = ", ".join(_f((m or 0) / 1e6, "{:,.0f}") for m in results["memory"]["peak_rss_per_worker"].get(key, []))
        t.add_row(r["rate"]["label"], _f(r["rate"]["articles_per_s"]), _f(r["rate"]["words_per_s"], "{:,.0f}"), f"peak RSS MB: {peak}")
        cpu = r.get("cpu_s")
        if cpu:
            workers = " + ".join(_f(w, "{:,.0f}") for w in cpu.get("workers", []))
            t.add_row("  CPU seconds in that run", "", "", f"worker(s) {workers}, broker {_f(cpu.get('broker'), '{:,.0f}')}, "
                      f"search {_f(cpu.get('search'), '{:,.0f}')}, bench {_f(cpu.get('bench'), '{:,.0f}')} "
                      f"(wall {_f(r['rate']['seconds'], '{:,.0f}')} s)")
        if r.get("reseeks"):
            t.add_row("  partitions re-read as stalled", "", "", f"{r['reseeks']} (each processes messages again; 0 when healthy)")
    lat = results.get("latency") or {}
    for key, lbl in (("indexed_s", "produce → indexed"), ("alert_s", "produce → alert")):
        p = lat.get(key) or {}
        t.add_row(f"{lbl} at {lat.get('target_rate') or 0:.1f}/s", "", "",
                  f"p50 {_f(p.get('p50'), '{:.2f}')} s  p95 {_f(p.get('p95'), '{:.2f}')} s  p99 {_f(p.get('p99'), '{:.2f}')} s  (n={p.get('n', 0)})")
    for hop, p in (lat.get("hops_s") or {}).items():
        note = ("not measurable: the worker forwards the upstream message timestamp" if p.get("carried")
                else f"p50 {_f(p.get('p50'), '{:.2f}')} s  p99 {_f(p.get('p99'), '{:.2f}')} s")
        t.add_row(f"  hop {hop}", "", "", note)
    alone = lat.get("search_alone")
    if alone:
        w = alone.get("write_s") or {}
        t.add_row("  search server alone, 1 article per bulk", "", "",
                  f"p50 {_f(w.get('p50'), '{:.3f}')} s  p99 {_f(w.get('p99'), '{:.3f}')} s  max {_f(w.get('max'), '{:.2f}')} s "
                  f"(write {alone.get('slowest_at')} of {alone.get('documents')}); {alone.get('over_1s')} write(s) over 1 s")
    mem = results.get("memory") or {}
    at_rest = str(mem.get("method", "")).startswith("worker RSS at rest")
    t.add_row("worker RSS growth" + (", at rest" if at_rest else ""), "", "",
              f"{_f((mem.get('rss_small') or 0) / 1e6, '{:,.0f}')} MB at {mem.get('articles_small')} → "
              f"{_f((mem.get('rss_large') or 0) / 1e6, '{:,.0f}')} MB at {mem.get('articles_large')}: {_f(mem.get('growth'), '{:+.1%}')}")
    if at_rest:
        t.add_row("  under load (median)", "", "",
                  f"{_f((mem.get('rss_small_under_load') or 0) / 1e6, '{:,.0f}')} MB → "
                  f"{_f((mem.get('rss_large_under_load') or 0) / 1e6, '{:,.0f}')} MB: {_f(mem.get('growth_under_load'), '{:+.1%}')}")
    sb0, sb1 = mem.get("state_bytes_small") or {}, mem.get("state_bytes_large") or {}
    if sb0 and sb1:
        t.add_row("  per-story state in the tables", "", "", ", ".join(
            f"{k} {_f(sb0.get(k, 0) / 1e6, '{:,.1f}')} → {_f(sb1.get(k, 0) / 1e6, '{:,.1f}')} MB" for k in sorted(sb0)))
    b0, b1 = mem.get("busy_after_indexed_s_small"), mem.get("busy_after_indexed_s_large")
    if b0 is not None and b1 is not None:
        t.add_row("  worker busy after the last article indexed", "", "", f"{b0:.0f} s at N, {b1:.0f} s at {mem.get('articles_large')}")
    links = results.get("links")
    if links:
        for sz in links.get("sizes", []):
            t.add_row(f"link, {sz['live_stories']:,} live stories", "", "", f"p50 {sz['p50_ms']:.2f} ms, p95 {sz['p95_ms']:.2f} ms per article")
    loads = results.get("load_average") or {}
    if loads:
        t.caption = "1-minute load average (2 = both cores busy on a 2-core machine): " + ", ".join(
            f"{k} {v[0]:.1f}" for k, v in loads.items())
    for tg in results.get("targets", []):
        verdict = {True: "[green]met[/]", False: "[red]not met[/]", None: "[yellow]not measured[/]"}[tg["met"]]
        op = "≥" if tg["at_least"] else "≤"
        t.add_row(f"target: {tg['name']}", "", "", f"{_f(tg['value'], '{:.3f}')} {op} {tg['limit']:g}: {verdict}")
    return t


__all__ = [
    "BenchOptions",
    "BenchStack",
    "Rate",
    "RecordingWebhook",
    "StallError",
    "Target",
    "component_seconds",
    "cpu_delta",
    "generate_article",
    "generate_articles",
    "growth",
    "latencies_alert",
    "latencies_indexed",
    "load_base_articles",
    "machine_info",
    "measure_analyser",
    "measure_nlp_pipe",
    "measure_parallel_limit",
    "percentiles",
    "perturb",
    "prepare_text",
    "process_cpu_seconds",
    "process_memory",
    "ratio",
    "results_table",
    "run_bench",
    "stage_seconds",
    "summarise",
    "targets",
    "window_rss",
    "write_plots",
    "write_results",
]

if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "limit-child":
        _limit_child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit("usage: python -m pipeline.bench limit-child TEXTS.jsonl START STOP BATCH_SIZE")
