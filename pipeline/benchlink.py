"""Story-linking cost benchmark: time and memory per article against N live stories.

The linker must cost about the same per article whether 1,000 or 100,000 stories are live
(candidates come from an inverted index, never from scoring every story), and its memory must
grow linearly with a small constant per live story. This module measures both on synthetic
:class:`~pipeline.types.LinkFeatures` (no spaCy), so that 100,000 stories fit in minutes.

The synthetic corpus (:class:`SyntheticCorpus`) is built to stress an inverted index the way news
does:

- a Zipfian vocabulary (``vocab`` pseudo-words): the top ranks are background words every article
  uses, a story's topic terms come from the middle and the tail, shared by many stories;
- a Zipfian pool of entity names, so that a few entities (the "United States" of the pool) appear
  in a large share of all stories and their postings are long; plus a few names only one story
  uses (the people and places of that event);
- salient numbers per story; articles of a story sample its topic terms, entities and numbers
  plus background noise, and carry a real MinHash fingerprint of their body.

Every string of an article is a fresh object, as when features are decoded from a topic, so a
story's memory is not understated by strings shared across stories.

For each size N, :func:`run_size` feeds N seed articles of N distinct stories, then times
``link()`` on ``probe`` articles, half of them new articles of existing stories and half the first
article of a new story. The seeds go through :meth:`StoryLinker.assign` by default (one story per
seed, guaranteed, at about twice the speed); ``build="link"`` feeds them through ``link()`` and
counts the seeds it merges into another story (the live set is then smaller than N). Memory is the
resident-set growth of the process while the linker is built (after a full garbage collection),
so it includes allocator overhead; with ``isolate=True`` each size runs in a fresh interpreter so
that sizes do not reuse each other's freed memory. Timing is never asserted in tests; this module
prints and writes numbers.

Deterministic: the same seed gives the same articles, whatever the sizes or their order.
"""

from __future__ import annotations

import gc
import json
import math
import multiprocessing as mp
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pipeline.features import fingerprint
from pipeline.link import LinkerConfig, StoryLinker
from pipeline.types import LinkFeatures

#: (stage description, done, total); called every few hundred articles and at the end of a stage.
ProgressFn = Callable[[str, int, int], None]
BuildMode = Literal["link", "assign"]

DEFAULT_SIZES: tuple[int, ...] = (1_000, 10_000, 100_000)
DEFAULT_SEED = 20240601
T0 = datetime(2024, 6, 1, tzinfo=UTC)
#: Seeds are spread over this window, probes come right after it; it stays well inside the
#: linker's horizon so that no story retires while the live set is being measured.
BUILD_WINDOW = timedelta(days=3)
#: Done-when of the issue: per-article time at the largest size over the smallest.
MAX_TIME_RATIO = 1.5

_SYLLABLES: tuple[str, ...] = tuple(
    [c + v for c in "bdfgklmnprstvz" for v in "aeiou"] + [c + v + "n" for c in "bdkmrst" for v in "aeiou"]
)
_STORY_BLOCK = 1024  # stories whose specs come from one generator: specs do not depend on N


def _word(rank: int) -> str:
    """An injective rank → pronounceable pseudo-word (3-4 syllables for realistic lengths)."""
    out = []
    r = rank + len(_SYLLABLES) ** 2  # at least three syllables: content words are not short
    while r:
        r, d = divmod(r, len(_SYLLABLES))
        out.append(_SYLLABLES[d])
    return "".join(out)


def _zipf_cdf(n: int, s: float, start: int = 0) -> np.ndarray:
    """CDF over ranks 0..n-1 with p(r) ∝ 1/(r+1)^s, ranks below ``start`` excluded."""
    w = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** s
    w[:start] = 0.0
    c = np.cumsum(w)
    return c / c[-1]


@dataclass(frozen=True)
class CorpusSpec:
    """Shape of the synthetic news. The defaults give articles of ~200 content tokens."""

    vocab: int = 50_000
    zipf_s: float = 1.05  # background word frequencies
    background_top: int = 300  # the most common ranks are background only, never topic terms
    topic_s: float = 0.9  # topic terms: flatter, from the middle and tail of the vocabulary
    topic_terms: int = 30
    entity_pool: int = 200_000
    entity_s: float = 1.0
    pool_entities: int = 6  # entities of a story drawn from the Zipfian pool
    own_entities: int = 3  # entities only this story has (the people and places of the event)
    numbers: int = 4
    title_len: int = 8
    body_len: tuple[int, int] = (120, 260)
    body_topic_share: float = 0.4  # the rest of the body is background noise
    title_topic_share: float = 0.75
    body_entity_mentions: tuple[int, int] = (6, 13)
    foreign_entity_share: float = 0.15  # body mentions of entities outside the story


@dataclass(frozen=True)
class _StorySpec:
    terms: np.ndarray
    entities: tuple[str, ...]
    numbers: tuple[str, ...]


class SyntheticCorpus:
    """Deterministic synthetic stories and their articles.

    ``article(story, k)`` is the ``k``-th article of story ``story``; the same (seed, story, k)
    always gives the same features, in any process and in any order of calls.
    """

    def __init__(self, seed: int = DEFAULT_SEED, spec: CorpusSpec | None = None) -> None:
        self.seed = seed
        self.spec = spec = spec or CorpusSpec()
        self.vocab: list[str] = [_word(r) for r in range(spec.vocab)]
        self.entity_names: list[str] = [f"{_word(r)} {_word(7 * r + 3)}" for r in range(spec.entity_pool)]
        self._word_cdf = _zipf_cdf(spec.vocab, spec.zipf_s)
        self._topic_cdf = _zipf_cdf(spec.vocab, spec.topic_s, start=spec.background_top)
        self._entity_cdf = _zipf_cdf(spec.entity_pool, spec.entity_s)
        # Within a story, its first terms and entities are its most salient ones.
        self._term_cdf = _zipf_cdf(spec.topic_terms, 1.0)
        self._ent_cdf = _zipf_cdf(spec.pool_entities + spec.own_entities, 1.0)
        self._blocks: dict[int, list[_StorySpec]] = {}

    # ----------------------------------------------------------------- stories

    def _own_entity(self, story: int, j: int) -> str:
        v = self.spec.vocab
        # Never a pool name: that would need rank r = vocab + ... and 7r + 3 = r + 1 at once.
        return f"{_word(v + story * self.spec.own_entities + j)} {_word(v + 2 * story + j + 1)}"

    def story(self, story: int) -> _StorySpec:
        b, i = divmod(story, _STORY_BLOCK)
        block = self._blocks.get(b)
        if block is None:
            block = self._blocks[b] = self._make_block(b)
        return block[i]

    def _make_block(self, b: int) -> list[_StorySpec]:
        sp = self.spec
        rng = np.random.default_rng([self.seed, 0, b])
        terms = np.searchsorted(self._topic_cdf, rng.random((_STORY_BLOCK, sp.topic_terms)))
        ents = np.searchsorted(self._entity_cdf, rng.random((_STORY_BLOCK, sp.pool_entities)))
        nums = rng.integers(10, 20_000, size=(_STORY_BLOCK, sp.numbers))
        out = []
        for i in range(_STORY_BLOCK):
            story = b * _STORY_BLOCK + i
            names = [self.entity_names[j] for j in ents[i]]
            # Own entities first: the names of this event's people and places are its most salient.
            names = [self._own_entity(story, j) for j in range(sp.own_entities)] + names
            out.append(_StorySpec(terms=terms[i], entities=tuple(names), numbers=tuple(str(n) for n in nums[i])))
        return out

    # ----------------------------------------------------------------- articles

    def article(self, story: int, k: int = 0) -> LinkFeatures:
        """The ``k``-th article of story ``story``: topic terms, entities and numbers of the story
        plus Zipfian background words and a few entities of other stories."""
        sp = self.spec
        st = self.story(story)
        rng = np.random.default_rng([self.seed, 1, story, k])
        n_body = int(rng.integers(*sp.body_len))
        body_r, pick_r, noise_r = rng.random((3, n_body))
        title_r, tpick_r, tnoise_r = rng.random((3, sp.title_len))
        topic = st.terms[np.searchsorted(self._term_cdf, pick_r)]
        noise = np.searchsorted(self._word_cdf, noise_r)
        body = np.where(body_r < sp.body_topic_share, topic, noise)
        t_topic = st.terms[np.searchsorted(self._term_cdf, tpick_r)]
        t_noise = np.searchsorted(self._word_cdf, tnoise_r)
        title = np.where(title_r < sp.title_topic_share, t_topic, t_noise)
        vocab = self.vocab
        ne = len(st.entities)
        n_title_ents = int(rng.integers(1, 3))
        title_ents = [st.entities[j] for j in np.searchsorted(self._ent_cdf, rng.random(n_title_ents))]
        n_mentions = int(rng.integers(*sp.body_entity_mentions))
        foreign = rng.random(n_mentions) < sp.foreign_entity_share
        own = np.searchsorted(self._ent_cdf, rng.random(n_mentions)).clip(0, ne - 1)
        other = np.searchsorted(self._entity_cdf, rng.random(n_mentions))
        body_ents = [self.entity_names[o] if f else st.entities[s] for f, s, o in zip(foreign, own, other, strict=True)]
        # Names are words of the text too: their tokens go with the topic and background words.
        # join/split: fresh string objects per article, as when decoded from a topic.
        body_tokens = tuple(" ".join([vocab[j] for j in body] + body_ents).split(" "))
        title_tokens = tuple(" ".join([vocab[j] for j in title] + title_ents).split(" "))
        n_nums = int(rng.integers(2, sp.numbers + 1))
        numbers = [st.numbers[j] for j in sorted(rng.choice(sp.numbers, n_nums, replace=False))]
        if rng.random() < 0.3:  # a number from elsewhere (a date, an unrelated total)
            numbers.append(str(int(rng.integers(10, 20_000))))
        sep = "\x1f"
        return LinkFeatures(
            title_tokens=title_tokens,
            body_tokens=body_tokens,
            title_lemmas=tuple(" ".join(title_tokens).split(" ")),
            body_lemmas=tuple(" ".join(body_tokens).split(" ")),
            title_entities=tuple(sep.join(title_ents).split(sep)),
            body_entities=tuple(sep.join(body_ents).split(sep)),
            numbers=tuple(dict.fromkeys(sep.join(numbers).split(sep))),
            fingerprint=fingerprint(body_tokens),
        )


# --------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class SizeResult:
    """Cost of linking at one live-set size. Times are in milliseconds per ``link()`` call."""

    target_stories: int  # seed articles fed, each the first of a distinct synthetic story
    live_stories: int  # live stories after the build (fewer when the linker merged seeds)
    merged_seeds: int  # seeds that joined an existing story instead of opening one
    build_mode: str
    build_seconds: float  # time spent inside the linker while building
    build_per_second: float
    generate_seconds: float  # time spent generating the synthetic features
    probes: int
    mean_ms: float
    p50_ms: float
    p95_ms: float
    max_ms: float
    cpu_mean_ms: float  # CPU time of this thread: less sensitive to other load on a shared machine
    join_mean_ms: float  # probes that are a new article of an existing story
    new_mean_ms: float  # probes that open a new story
    candidates_mean: float
    candidates_max: int
    join_accuracy: float  # join probes that landed in their story
    new_accuracy: float  # new-story probes that opened a story
    memory_bytes: int  # resident-set growth while the linker was built
    bytes_per_story: float
    story_bytes_sampled: float  # deep size of one live story, mean over a sample
    story_breakdown: dict[str, float] = field(default_factory=dict)  # bytes per story, by part
    memory_method: str = "rss"


@dataclass(frozen=True)
class BenchResult:
    sizes: tuple[SizeResult, ...]
    probe: int
    seed: int
    max_candidates: int
    time_ratio: float  # mean ms at the largest size / at the smallest
    p50_ratio: float
    cpu_ratio: float
    slope_bytes_per_story: float  # least-squares fit of memory_bytes on live_stories
    intercept_bytes: float
    r_squared: float
    isolated: bool
    python: str = sys.version.split()[0]
    cpus: int = os.cpu_count() or 1

    @property
    def judged_ratio(self) -> float:
        """The ratio the 1.5× criterion is judged on: the worse of the p50 and CPU-time ratios.
        The wall-clock mean is kept for the record, but on a shared machine other processes' load
        moves it more than the linker does."""
        return max(self.p50_ratio, self.cpu_ratio)

    @property
    def time_ok(self) -> bool:
        return self.judged_ratio <= MAX_TIME_RATIO

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["judged_ratio"] = self.judged_ratio
        d["time_ok"] = self.time_ok
        d["max_time_ratio"] = MAX_TIME_RATIO
        return d


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, float]:
    """Least-squares ``y = slope·x + intercept`` and its R²; one point gives a line through 0."""
    x = np.asarray(xs, dtype=np.float64)
    y = np.asarray(ys, dtype=np.float64)
    if len(x) < 2:
        slope = float(y[0] / x[0]) if len(x) and x[0] else 0.0
        return slope, 0.0, 1.0
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else 1.0
    return float(slope), float(intercept), r2


# --------------------------------------------------------------------------------- memory


def rss_bytes() -> int:
    """Current resident-set size of this process (Linux ``/proc``; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def deep_size(obj: object, seen: set[int] | None = None) -> int:
    """Bytes of ``obj`` and everything it references through containers, dataclasses and
    pydantic models, each object counted once (``seen`` is shared across calls)."""
    seen = set() if seen is None else seen
    total = 0
    stack = [obj]
    while stack:
        o = stack.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        total += sys.getsizeof(o)
        if isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, (list, tuple, set, frozenset)):
            stack.extend(o)
        elif hasattr(o, "__dict__"):
            stack.append(vars(o))
        elif hasattr(o, "__slots__"):
            stack.extend(getattr(o, s) for s in o.__slots__ if hasattr(o, s))
    return total


def _story_sizes(linker: StoryLinker, sample: int, rng: np.random.Generator) -> tuple[float, dict[str, float]]:
    # Reads the linker's private story table: this is measurement, not use.
    stories = list(getattr(linker, "_stories", {}).values())
    if not stories:
        return 0.0, {}
    picks = rng.choice(len(stories), min(sample, len(stories)), replace=False)
    parts: dict[str, float] = {}
    total = 0.0
    for i in picks:
        st = stories[int(i)]
        seen: set[int] = set()
        whole = deep_size(st, seen)
        total += whole
        for name in ("vectors", "df", "fingerprints", "decisions"):
            val = getattr(st, name, None)
            if val is not None:
                parts[name] = parts.get(name, 0.0) + deep_size(val, set())
    n = len(picks)
    out = {k: v / n for k, v in parts.items()}
    out["other"] = total / n - sum(out.values())
    return total / n, out


# --------------------------------------------------------------------------------- one size


def _chunks(total: int, every: int) -> Iterator[int]:
    yield from range(0, total, every)


def run_size(
    n_stories: int,
    probe: int = 500,
    *,
    seed: int = DEFAULT_SEED,
    config: LinkerConfig | None = None,
    build: BuildMode = "assign",
    spec: CorpusSpec | None = None,
    progress: ProgressFn | None = None,
    sample_stories: int = 200,
) -> SizeResult:
    """Build a linker with ``n_stories`` live stories and time ``link()`` on ``probe`` articles.

    Half the probes (rounded down) are a second article of a random existing story, the rest the
    first article of a story never seen. Probes are generated before timing starts; only the
    ``link()`` call itself is timed."""
    if n_stories < 1 or probe < 2:
        raise ValueError("need at least one story and two probes")
    config = config or LinkerConfig()
    if BUILD_WINDOW.total_seconds() * 2 >= config.horizon_days * 86400:
        raise ValueError("the linker's horizon is too short: stories would retire during the benchmark")
    corpus = SyntheticCorpus(seed, spec)
    n_join = probe // 2
    n_new = probe - n_join
    rng = np.random.default_rng([seed, 2, n_stories])
    join_of = rng.choice(n_stories, size=min(n_join, n_stories), replace=n_join > n_stories)
    # Build every story spec up front so that their arrays are not counted as linker memory.
    for s in range(0, n_stories + n_new, _STORY_BLOCK):
        corpus.story(s)
    corpus.story(n_stories + n_new - 1)

    linker = StoryLinker(config)
    step = BUILD_WINDOW / n_stories
    label = f"{n_stories:,} stories: build"
    seed_story: list[str] = []  # seed i -> the linker's story id (to check the join probes)
    gc.collect()
    rss0 = rss_bytes()
    link_s = gen_s = 0.0
    merged = 0
    every = max(1, min(1000, n_stories // 50))
    for start in _chunks(n_stories, every):
        for i in range(start, min(start + every, n_stories)):
            t = time.perf_counter()
            f = corpus.article(i, 0)
            t1 = time.perf_counter()
            aid = f"seed-{i}"
            when = T0 + step * i
            if build == "assign":
                linker.assign(aid, f, when, f"story-{i}")
                sid = f"story-{i}"
            else:
                d = linker.link(aid, f, when)
                sid = d.story
                merged += not d.is_new
            t2 = time.perf_counter()
            gen_s += t1 - t
            link_s += t2 - t1
            seed_story.append(sid)
        if progress:
            progress(label, min(start + every, n_stories), n_stories)
    del f
    gc.collect()
    memory = rss_bytes() - rss0
    story_bytes, breakdown = _story_sizes(linker, sample_stories, rng)

    # Probes: generated first, then shuffled joins and new stories, timed one link() at a time.
    items: list[tuple[str, LinkFeatures, int | None]] = []
    for j, s in enumerate(join_of):
        items.append((f"probe-join-{j}", corpus.article(int(s), 1), int(s)))
    for j in range(n_new):
        items.append((f"probe-new-{j}", corpus.article(n_stories + j, 0), None))
    order = rng.permutation(len(items))
    times = np.zeros(len(items))
    cpu = np.zeros(len(items))
    cands = np.zeros(len(items), dtype=np.int64)
    join_ok = new_ok = 0
    is_join = np.zeros(len(items), dtype=bool)
    label = f"{n_stories:,} stories: probe"
    for k, idx in enumerate(order):
        aid, f, story = items[int(idx)]
        when = T0 + BUILD_WINDOW + timedelta(seconds=10 * k)
        c = time.thread_time_ns()
        t = time.perf_counter_ns()
        d = linker.link(aid, f, when)
        times[k] = (time.perf_counter_ns() - t) / 1e6
        cpu[k] = (time.thread_time_ns() - c) / 1e6
        cands[k] = d.candidates
        if story is None:
            new_ok += d.is_new
        else:
            is_join[k] = True
            join_ok += d.story == seed_story[story]
        if progress and ((k + 1) % 50 == 0 or k + 1 == len(items)):
            progress(label, k + 1, len(items))
    live = n_stories - merged
    return SizeResult(
        target_stories=n_stories,
        live_stories=live,
        merged_seeds=merged,
        build_mode=build,
        build_seconds=link_s,
        build_per_second=n_stories / link_s if link_s > 0 else math.inf,
        generate_seconds=gen_s,
        probes=len(items),
        mean_ms=float(times.mean()),
        p50_ms=float(np.percentile(times, 50)),
        p95_ms=float(np.percentile(times, 95)),
        max_ms=float(times.max()),
        cpu_mean_ms=float(cpu.mean()),
        join_mean_ms=float(times[is_join].mean()) if is_join.any() else 0.0,
        new_mean_ms=float(times[~is_join].mean()) if (~is_join).any() else 0.0,
        candidates_mean=float(cands.mean()),
        candidates_max=int(cands.max()),
        join_accuracy=join_ok / max(1, int(is_join.sum())),
        new_accuracy=new_ok / max(1, int((~is_join).sum())),
        memory_bytes=int(memory),
        bytes_per_story=memory / live if live else 0.0,
        story_bytes_sampled=story_bytes,
        story_breakdown=breakdown,
    )


def _child(kwargs: dict[str, Any], queue: Any) -> None:
    """Entry point of an isolated size run: results and progress go back through ``queue``."""
    try:
        res = run_size(progress=lambda *a: queue.put(("progress", a)), **kwargs)
        queue.put(("result", asdict(res)))
    except BaseException:  # noqa: BLE001 — report anything to the parent, which re-raises
        queue.put(("error", traceback.format_exc()))


def _run_isolated(kwargs: dict[str, Any], progress: ProgressFn | None) -> SizeResult:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(kwargs, queue), daemon=True)
    proc.start()
    try:
        while True:
            try:
                kind, payload = queue.get(timeout=1.0)
            except Exception:  # queue.Empty: check the child is still alive
                if not proc.is_alive():
                    raise RuntimeError(f"benchmark child exited with code {proc.exitcode}") from None
                continue
            if kind == "progress":
                if progress:
                    progress(*payload)
            elif kind == "result":
                return SizeResult(**payload)
            else:
                raise RuntimeError(f"benchmark child failed:\n{payload}")
    finally:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.terminate()


# --------------------------------------------------------------------------------- the benchmark


def run_benchmark(
    sizes: Sequence[int] = DEFAULT_SIZES,
    probe: int = 500,
    *,
    seed: int = DEFAULT_SEED,
    config: LinkerConfig | None = None,
    build: BuildMode = "assign",
    isolate: bool = True,
    progress: ProgressFn | None = None,
) -> BenchResult:
    """Run :func:`run_size` at every size (ascending) and fit memory against live stories.

    ``isolate=True`` runs each size in a fresh interpreter (``spawn``) so that the resident-set
    growth belongs to that size alone; ``config`` must then be the default or a picklable
    :class:`LinkerConfig` (it is)."""
    if not sizes:
        raise ValueError("no sizes")
    config = config or LinkerConfig()
    results = []
    for n in sorted(set(sizes)):
        kwargs = {"n_stories": n, "probe": probe, "seed": seed, "config": config, "build": build}
        results.append(_run_isolated(kwargs, progress) if isolate else run_size(progress=progress, **kwargs))
    small, large = results[0], results[-1]
    slope, intercept, r2 = fit_line([r.live_stories for r in results], [r.memory_bytes for r in results])
    return BenchResult(
        sizes=tuple(results),
        probe=probe,
        seed=seed,
        max_candidates=config.max_candidates,
        time_ratio=large.mean_ms / small.mean_ms if small.mean_ms > 0 else math.inf,
        p50_ratio=large.p50_ms / small.p50_ms if small.p50_ms > 0 else math.inf,
        cpu_ratio=large.cpu_mean_ms / small.cpu_mean_ms if small.cpu_mean_ms > 0 else math.inf,
        slope_bytes_per_story=slope,
        intercept_bytes=intercept,
        r_squared=r2,
        isolated=isolate,
    )


# --------------------------------------------------------------------------------- retirement


@dataclass(frozen=True)
class RetireResult:
    """What the link table is written while stories keep retiring (bytes are the table values'
    JSON, as the worker writes them: one journal and the changed keys per batch)."""

    stories: int
    articles: int
    retired: int
    folds: int  # times the retired records folded into a new base
    batches: int
    largest_value_bytes: int  # the largest single table value written (one Kafka message)
    largest_key: str
    bytes_per_article: float  # everything the link table was written, per article
    retired_bytes_per_article: float  # the retired aggregate's keys alone (records, shards, meta)
    journals_in_parts: int  # batches whose journal was over the message limit, so written in parts
    ms_per_article: float  # link() alone


def run_retirement(
    n_stories: int,
    *,
    per_story: int = 3,
    batch: int = 32,
    seed: int = DEFAULT_SEED,
    config: LinkerConfig | None = None,
    message_limit: int = 1_048_576,
    progress: ProgressFn | None = None,
) -> RetireResult:
    """Link a stream in which stories keep retiring, and write the link table as the worker does.

    A new synthetic story every 20 minutes, each with ``per_story`` articles an hour apart, and a
    one-day horizon: after the first day about 72 stories retire a day. The table's writes come
    from one :class:`pipeline.linking.JournalWriter` over batches of ``batch`` articles, with the
    value limit the worker uses at Kafka's default ``message_limit``."""
    from pipeline.link import RETIRED_KEY
    from pipeline.article import RECORD_HEADROOM
    from pipeline.linking import JOURNAL_KEY, JOURNAL_PART_PREFIX, JournalWriter

    corpus = SyntheticCorpus(seed)
    cfg = (config or LinkerConfig()).model_copy(update={"horizon_days": 1.0})
    linker = StoryLinker(cfg)
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    stream = sorted(
        ((t0 + timedelta(minutes=20 * st + 60 * k), st, k) for st in range(n_stories) for k in range(per_story)),
        key=lambda x: (x[0], x[1]),
    )
    total = retired_bytes = largest = folds = batches = in_parts = 0
    writer = JournalWriter(message_limit - RECORD_HEADROOM)
    largest_key = ""
    link_s = 0.0
    for i in range(0, len(stream), batch):
        changed: dict[str, None] = {}
        for when, st, k in stream[i : i + batch]:
            f = corpus.article(st, k)
            t = time.perf_counter()
            linker.link(f"s{st}-{k}", f, None, now=when)
            link_s += time.perf_counter() - t
            keys = linker.changed_stories()
            folds += RETIRED_KEY in keys
            changed.update(dict.fromkeys(keys))
        exports = {key: linker.export_story(key) for key in changed}
        writes = writer.writes(exports)
        in_parts += any(key.startswith(JOURNAL_PART_PREFIX) and value is not None for key, value in writes)
        for key, value in writes:
            if value is None:
                continue
            total += len(value)
            if key.startswith(RETIRED_KEY):
                retired_bytes += len(value)
            if len(value) > largest:
                largest, largest_key = len(value), key
        batches += 1
        if progress is not None:
            progress("retirement", min(i + batch, len(stream)), len(stream))
    n = max(1, len(stream))
    return RetireResult(
        stories=n_stories,
        articles=len(stream),
        retired=linker.retired_totals()["stories"],
        folds=folds,
        batches=batches,
        largest_value_bytes=largest,
        largest_key=largest_key.split("/")[0] if largest_key.startswith(RETIRED_KEY) else ("journal" if largest_key.startswith(JOURNAL_KEY) else "story"),
        bytes_per_article=total / n,
        retired_bytes_per_article=retired_bytes / n,
        journals_in_parts=in_parts,
        ms_per_article=1000.0 * link_s / n,
    )


def retirement_line(r: RetireResult) -> str:
    return (
        f"retirement: {r.stories:,} stories ({r.articles:,} articles, {r.retired:,} retired, {r.folds} folds): "
        f"largest table value {r.largest_value_bytes / 1e3:,.0f} KB ({r.largest_key}), "
        f"{r.bytes_per_article / 1e3:.1f} KB written per article ({r.retired_bytes_per_article / 1e3:.1f} KB of it the "
        f"retired aggregate), {r.journals_in_parts} of {r.batches} batch journals written in parts, {r.ms_per_article:.2f} ms per link"
    )


# --------------------------------------------------------------------------------- outputs


def write_json(result: BenchResult, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
    return path


def write_plot(result: BenchResult, path: Path) -> Path:
    """Two panels: ms per article against live stories (log x), and memory with its linear fit.
    matplotlib is imported here, with the Agg backend, so that nothing else depends on it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = np.array([r.live_stories for r in result.sizes], dtype=np.float64)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    series = (("mean_ms", "mean", "o-"), ("p50_ms", "p50", "s--"), ("p95_ms", "p95", "^:"), ("cpu_mean_ms", "cpu mean", "x-."))
    for attr, lbl, style in series:
        ax1.plot(xs, [getattr(r, attr) for r in result.sizes], style, label=lbl)
    ax1.set_xscale("log")
    ax1.set_ylim(bottom=0)
    ax1.set_xlabel("live stories")
    ax1.set_ylabel("ms per article (link)")
    verdict = "ok" if result.time_ok else "over"
    ax1.set_title(
        f"time per article, largest/smallest: p50 {result.p50_ratio:.2f}×, cpu {result.cpu_ratio:.2f}×, "
        f"mean {result.time_ratio:.2f}× ({verdict}: limit {MAX_TIME_RATIO}×)"
    )
    ax1.title.set_fontsize(9)
    ax1.legend()
    ax1.grid(True, which="both", alpha=0.3)

    mb = np.array([r.memory_bytes for r in result.sizes], dtype=np.float64) / 1e6
    ax2.plot(xs, mb, "o", label="measured (RSS growth)")
    line_x = np.linspace(0, xs.max(), 50)
    ax2.plot(line_x, (result.slope_bytes_per_story * line_x + result.intercept_bytes) / 1e6, "-", label="linear fit")
    ax2.set_xlabel("live stories")
    ax2.set_ylabel("linker memory, MB")
    ax2.set_title(f"memory: {result.slope_bytes_per_story / 1024:.1f} KiB per story (R² {result.r_squared:.4f})")
    ax2.title.set_fontsize(9)
    ax2.annotate(
        f"{result.slope_bytes_per_story:,.0f} bytes/story",
        xy=(xs[-1], mb[-1]),
        xytext=(0.05, 0.85),
        textcoords="axes fraction",
        arrowprops={"arrowstyle": "->", "alpha": 0.5},
    )
    ax2.legend(loc="lower right")
    ax2.grid(True, alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def results_table(result: BenchResult):  # -> rich.table.Table
    """A rich table of the results, one row per size."""
    from rich.table import Table

    t = Table(title=f"story linking cost ({result.probe} probe articles per size, seed {result.seed})")
    cols = (
        "live stories", "merged seeds", "build/s", "mean ms", "p50 ms", "p95 ms", "cpu ms", "join ms", "new ms",
        "cands mean/max", "join ok", "new ok", "memory MB", "bytes/story",
    )  # fmt: skip
    for c in cols:
        t.add_column(c, justify="right")
    for r in result.sizes:
        t.add_row(
            f"{r.live_stories:,}",
            f"{r.merged_seeds:,}",
            f"{r.build_per_second:,.0f}",
            f"{r.mean_ms:.2f}",
            f"{r.p50_ms:.2f}",
            f"{r.p95_ms:.2f}",
            f"{r.cpu_mean_ms:.2f}",
            f"{r.join_mean_ms:.2f}",
            f"{r.new_mean_ms:.2f}",
            f"{r.candidates_mean:.1f}/{r.candidates_max}",
            f"{r.join_accuracy:.0%}",
            f"{r.new_accuracy:.0%}",
            f"{r.memory_bytes / 1e6:,.1f}",
            f"{r.bytes_per_story:,.0f}",
        )
    verdict = "[green]ok[/]" if result.time_ok else "[red]over[/]"
    t.caption = (
        f"time ratio largest/smallest: p50 {result.p50_ratio:.2f}×, cpu {result.cpu_ratio:.2f}× "
        f"({verdict}, limit {MAX_TIME_RATIO}×), wall mean {result.time_ratio:.2f}×  ·  memory fit: {result.slope_bytes_per_story:,.0f} bytes/story "
        f"+ {result.intercept_bytes / 1e6:,.1f} MB (R² {result.r_squared:.4f})  ·  "
        f"candidates capped at {result.max_candidates}"
    )
    return t


__all__ = [
    "DEFAULT_SIZES",
    "MAX_TIME_RATIO",
    "BenchResult",
    "RetireResult",
    "CorpusSpec",
    "SizeResult",
    "SyntheticCorpus",
    "deep_size",
    "fit_line",
    "results_table",
    "retirement_line",
    "rss_bytes",
    "run_benchmark",
    "run_retirement",
    "run_size",
    "write_json",
    "write_plot",
]
