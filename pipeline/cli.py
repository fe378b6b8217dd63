"""The ``crosswire`` command."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console, Group
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .settings import Settings

app = typer.Typer(
    name="crosswire",
    help=(
        "Watch a live stream of news, group reports into stories as they arrive, and alert the moment "
        "sources contradict each other.\n\n"
        "Configuration comes from CROSSWIRE_* environment variables (see `crosswire config`). "
        "Quick start: `crosswire demo`, or `crosswire up` in one terminal, then `crosswire worker` "
        "and `crosswire produce seeds/` in others."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Wide enough for the contradiction tables when output is not a terminal (CI logs, pipes).
console = Console() if Console().is_terminal else Console(width=140)
err = Console(stderr=True, soft_wrap=True)  # error lines (paths, URLs) are never broken up


def _settings() -> Settings:
    try:
        return Settings()
    except Exception as e:  # pydantic ValidationError: say which variable is wrong
        err.print(f"[red]error:[/] invalid configuration: {e}")
        raise typer.Exit(2) from None


def _progress(transient: bool = False) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=transient,
    )


def _fail(msg: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/] {msg}")
    return typer.Exit(code)


# ----------------------------------------------------------------------------------------- up


@app.command()
def up(
    kafka_port: Annotated[int, typer.Option(help="Port of the embedded Kafka-protocol broker.")] = 9092,
    es_port: Annotated[int, typer.Option(help="Port of the embedded search server.")] = 9200,
) -> None:
    """Start the embedded broker (Tansu) and search server (osmem) on loopback, until Ctrl-C.

    Both are memory-only: stopping them loses their data. With the default ports, every other
    command works against them with default settings."""
    from .embedded import EmbeddedError, Stack
    from .kafka import ensure_topics
    from .search import ensure_templates, make_client

    try:
        stack = Stack.start(kafka_port, es_port)
    except EmbeddedError as e:
        raise _fail(str(e)) from None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        s = Settings(**{"kafka_bootstrap": stack.broker.bootstrap, "es_url": stack.search.url, "es_compat": "plain-json"})
        ensure_topics(s)
        ensure_templates(make_client(s), s)
        console.print(f"[green]Kafka-protocol broker[/] (Tansu)      {stack.broker.bootstrap}")
        console.print(f"[green]Search server[/] (osmem, OpenSearch API) {stack.search.url}")
        console.print("Topics and index templates are ready. In another terminal:")
        if (kafka_port, es_port) != (9092, 9200):
            for k, v in stack.env().items():
                console.print(f"  export {k}={v}")
        console.print("  crosswire worker        # then: crosswire produce seeds/")
        console.print("Ctrl-C stops both (their data is in memory only).")
        while not stop.wait(0.5):
            if stack.broker.process.poll() is not None or stack.search.server.process.poll() is not None:
                raise _fail("an embedded server exited unexpectedly")
    finally:
        stack.stop()
        console.print("stopped.")


# ------------------------------------------------------------------------------------- worker


@app.command()
def worker() -> None:
    """Run a stream worker (faust): normalise, entities, link, claims, contradictions, index, alert.

    Start as many as you have cores; they share the work through the consumer group. Prometheus
    metrics are served on CROSSWIRE_METRICS_PORT (/metrics)."""
    from .worker import run_worker

    run_worker(_settings())


@app.command()
def init() -> None:
    """Create the topics and the index templates (idempotent)."""
    from .kafka import ensure_topics
    from .search import ensure_templates, make_client

    s = _settings()
    created = ensure_topics(s)
    ensure_templates(make_client(s), s)
    console.print(f"topics created: {', '.join(created) or 'none (all existed)'}; index templates applied.")


# ------------------------------------------------------------------------------------ produce


@app.command()
def produce(
    paths: Annotated[list[str], typer.Argument(help="JSONL files, .txt files, folders, or - for JSON lines on stdin.")],
) -> None:
    """Validate articles and push them onto the articles topic (kafka-python, acks=all).

    Articles are JSON lines {"id", "url", "source", "title", "text", "published", "language"}; only
    text is required (a missing id is derived from the content). Rejected records are reported and
    sent to the dead-letter topic with their reason."""
    from .kafka import ArticleProducer, ensure_topics
    from .sources import InputError, count_records, expand, iter_records

    s = _settings()
    try:
        files = expand(paths)
    except InputError as e:
        raise _fail(str(e), 2) from None
    total = count_records(files)
    ensure_topics(s)
    producer = ArticleProducer(s)
    try:
        with _progress() as progress:
            task = progress.add_task("producing", total=total)
            summary = producer.send(
                iter_records(files),
                on_error=lambda origin, msg: progress.console.print(f"[yellow]rejected[/] {origin}: {msg}"),
                on_progress=lambda n: progress.advance(task, n),
            )
    finally:
        producer.close()
    table = Table(title="produce", show_header=False)
    table.add_row("sent", str(summary.sent), s.topic("articles"))
    table.add_row("rejected", str(summary.total_rejected), s.topic("dead-letters"))
    for reason, n in summary.rejected.most_common():
        table.add_row("", str(n), reason)
    console.print(table)
    if summary.total_rejected:
        raise typer.Exit(1)


# ------------------------------------------------------------------------------ index queries


def _stories_table(rows: list[dict]) -> Table:
    t = Table(title="stories", show_lines=True)
    for col in ("story", "title", "articles", "outlets", "main entities"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(
            r.get("id", ""),
            r.get("title", ""),
            str(r.get("size", len(r.get("articles", [])))) + "\n" + "\n".join(r.get("articles", [])),
            ", ".join(r.get("outlets", [])) or "-",
            ", ".join(r.get("entities", [])[:8]),
        )
    return t


def _contradictions_table(rows: list[dict]) -> Group:
    """One small table per contradiction: each side's value, who reported it, and the quotes."""
    from .alert import describe_about

    if not rows:
        return Group("[dim]no contradictions in the index[/]")
    tables = []
    for r in rows:
        where = " (inside one article)" if r.get("internal") else ""
        t = Table(
            title=f"[bold]{r.get('kind', '')}[/]: {describe_about(r.get('about', ''))}{where}",
            caption=f"story {r.get('story', '')} · confidence {r.get('confidence', 0):.2f} · id {r.get('id', '')}",
            show_lines=True,
            title_justify="left",
        )
        t.add_column("value", style="bold", no_wrap=True)
        t.add_column("outlet / article", overflow="fold")
        t.add_column("according to", overflow="fold")
        t.add_column("quote", overflow="fold", ratio=3)
        for side in r.get("sides", []):
            reports = side.get("reports") or [
                {"article": ", ".join(side.get("articles", [])), "outlet": ", ".join(side.get("outlets") or []) or None,
                 "attributed_to": "; ".join(side.get("attributed_to") or []) or None, "quote": q}
                for q in (side.get("quotes") or [side.get("quote") or ""])[:1]
            ]
            for i, rep in enumerate(reports):
                where = f"{rep.get('outlet') or 'outlet unknown'}\n[dim]{rep.get('article', '')}[/]"
                t.add_row(str(side.get("value", "")) if i == 0 else "", where, rep.get("attributed_to") or "the outlet itself",
                          f"“{rep.get('quote', '')}”")
        tables.append(t)
    return Group(*tables)


@app.command()
def stories(size: Annotated[int, typer.Option(help="How many stories, newest first.")] = 20) -> None:
    """List the stories in the index."""
    from .search import list_stories, make_client

    s = _settings()
    console.print(_stories_table(list_stories(make_client(s), s, size=size)))


@app.command()
def contradictions(
    story: Annotated[Optional[str], typer.Option(help="Only this story id.")] = None,
    size: Annotated[int, typer.Option(help="How many contradictions.")] = 50,
) -> None:
    """List the contradictions in the index, each with its sides."""
    from .search import list_contradictions, make_client

    s = _settings()
    console.print(_contradictions_table(list_contradictions(make_client(s), s, story=story, size=size)))


# ------------------------------------------------------------------------------------- replay


def _load_nlp(s: Settings):
    from .aliases import AliasTable
    from .nlp import load_nlp

    return load_nlp(s.spacy_model, AliasTable.load(s.aliases_file))


@app.command()
def replay(
    file: Annotated[list[str], typer.Argument(help="JSONL file(s), .txt files or folders, as for produce.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for assignments.jsonl, claims.jsonl, contradictions.jsonl, ...")],
) -> None:
    """Run the stage code in-process (no broker, no search server), deterministically, and write
    the stories, claims and contradictions it finds."""
    from .analyse import Analyser
    from .linking import make_linker
    from .replay import replay as run_replay
    from .replay import write_outputs
    from .sources import InputError, count_records, expand, iter_records

    s = _settings()
    try:
        files = expand(file)
    except InputError as e:
        raise _fail(str(e), 2) from None
    total = count_records(files)
    with err.status("loading the spaCy pipeline"):
        nlp = _load_nlp(s)
    with _progress() as progress:
        task = progress.add_task("replaying", total=total)
        result = run_replay(
            iter_records(files),
            Analyser(nlp, batch_size=s.batch_size),
            make_linker(s),
            max_text_bytes=s.max_text_bytes,
            progress=lambda n: progress.advance(task, n),
        )
    paths = write_outputs(result, out)
    t = Table(title=f"replay → {out}", show_header=False)
    t.add_row("articles", str(len(result.assignments)))
    t.add_row("stories", str(len(result.stories)))
    t.add_row("claims", str(sum(len(la.analysed.claims) for la in result.linked)))
    t.add_row("contradictions", str(len(result.contradictions)))
    t.add_row("dead letters", str(len(result.dead_letters)))
    for name, p in paths.items():
        t.add_row(name, str(p))
    console.print(t)


@app.command("eval-links")
def eval_links(
    file: Annotated[Path, typer.Argument(help="JSONL with a gold `story` field on every line.")],
    worst_n: Annotated[int, typer.Option(
        "--worst",
        help="How many worst merges and splits to show, and how many of the joins where a merge began "
             "(an article joining a story that holds none of its gold story yet).",
    )] = 5,
    orders: Annotated[int, typer.Option(
        "--orders",
        help="Also link the file in this many shuffled orders (seeded; undated articles are shuffled among "
             "themselves, dated ones keep their places) and print BCubed F1's mean, min and max: one "
             "order's F1 can move by a few points.",
    )] = 0,
    dates: Annotated[Optional[str], typer.Option(
        "--dates",
        help="With --orders on an undated file: simulate publication dates, to check the linker's time model. "
             "'same': every article on one day (time must neither join nor split). 'spread': each gold story "
             "starts on its own day of a 30-day window, articles within 2 days, the stream in date order.",
    )] = None,
) -> None:
    """Replay FILE through the worker's stages (normalise, spaCy, linker) and score the stories
    against its gold `story` field: BCubed and pairwise precision/recall/F1, story counts, and the
    worst merges and splits by title, then the joins where merges began (with the linker's
    probability: what to look at first). With --orders, also the spread over shuffled orders."""
    import json

    from .analyse import Analyser
    from .linkeval import bcubed, merge_origins, pairwise, worst
    from .linking import make_linker
    from .replay import replay as run_replay
    from .sources import count_records, expand, iter_records

    s = _settings()
    if not file.is_file():
        raise _fail(f"{file}: no such file", 2)
    if orders < 0:
        raise _fail("--orders must be 0 or more", 2)
    from .linkeval import SYNTHETIC_DATES

    if dates is not None and (dates not in SYNTHETIC_DATES or not orders):
        raise _fail(f"--dates takes {' or '.join(SYNTHETIC_DATES)}, with --orders N", 2)
    gold: dict[str, str] = {}
    dated_lines = 0
    for n, line in enumerate(file.open(encoding="utf-8"), 1):
        if line.strip():
            try:
                rec = json.loads(line)
                gold[str(rec["id"])] = str(rec["story"])
                dated_lines += bool(rec.get("published"))
            except (ValueError, KeyError, TypeError, AttributeError):
                raise _fail(f"{file}:{n}: every line needs an `id` and a gold `story`", 2) from None
    if dates is not None and dated_lines:  # said before the spaCy pass, not after it
        raise _fail(f"--dates simulates dates on an undated file, and {dated_lines} line(s) of {file} have `published`", 2)
    files = expand([str(file)])
    with err.status("loading the spaCy pipeline"):
        nlp = _load_nlp(s)
    with _progress() as progress:
        task = progress.add_task("replaying", total=count_records(files))
        result = run_replay(iter_records(files), Analyser(nlp, batch_size=s.batch_size), make_linker(s),
                            max_text_bytes=s.max_text_bytes, progress=lambda k: progress.advance(task, k))
    pred = dict(result.assignments)
    t = Table(title=f"story linking on {file.name} ({len(pred)} articles)")
    for col in ("metric", "precision", "recall", "F1"):
        t.add_column(col)
    for name, fn in (("BCubed", bcubed), ("pairwise", pairwise)):
        p, r, f = fn(pred, gold)
        t.add_row(name, f"{p:.3f}", f"{r:.3f}", f"{f:.3f}")
    console.print(t)
    console.print(f"predicted stories: {len(set(pred.values()))}   gold stories: {len(set(gold[a] for a in pred if a in gold))}")
    titles = {la.analysed.article.id: la.analysed.title for la in result.linked}
    merges, splits = worst(pred, gold, titles, n=worst_n)
    for e in merges + splits:
        console.print(e.describe())
    origins = merge_origins(((la.analysed.article.id, la.link) for la in result.linked), gold, titles)
    if worst_n and origins:
        firsts = sum(o.first for o in origins)
        console.print(f"joins where a merge began: {len(origins)}, {firsts} of them by the first article of its gold story"
                      f"{f' (the first {worst_n} shown)' if len(origins) > worst_n else ''}")
        for o in origins[:worst_n]:
            console.print(o.describe())
    if orders:
        from .linkeval import order_scores, shuffled_orders

        items = [(la.analysed.article.id, la.analysed.features, la.analysed.article.published) for la in result.linked]
        dated = [pub is not None for _, _, pub in items]
        if dates is not None:
            from .linkeval import synthetic_dates

            with _progress() as progress:
                task = progress.add_task(f"orders with {dates} dates", total=orders)
                f1s = []
                for seed in range(orders):
                    order, pubs = synthetic_dates([gold.get(a, a) for a, _, _ in items], dates, seed)
                    timed = [(a, f, pub) for (a, f, _), pub in zip(items, pubs, strict=True)]
                    f1s += [f for _, _, f in order_scores(timed, gold, lambda: make_linker(s), [order])]
                    progress.advance(task)
            console.print(f"BCubed F1 over {orders} orders with '{dates}' dates: "
                          f"mean {sum(f1s) / len(f1s):.3f}, min {min(f1s):.3f}, max {max(f1s):.3f}")
            return
        if all(dated):
            console.print("--orders: every article is dated, so the stream's time order is the only order")
            return
        with _progress() as progress:
            task = progress.add_task("shuffled orders", total=orders)
            f1s = [f for _, _, f in order_scores(items, gold, lambda: make_linker(s), shuffled_orders(dated, orders),
                                                  progress=lambda k: progress.advance(task, k))]
        console.print(f"BCubed F1 over {orders} shuffled orders ({sum(not d for d in dated)} undated articles moved): "
                      f"mean {sum(f1s) / len(f1s):.3f}, min {min(f1s):.3f}, max {max(f1s):.3f}")


@app.command("eval-claims")
def eval_claims(
    gold: Annotated[Path, typer.Argument(help="Gold YAML (format: pipeline/evalclaims.py).")],
    replay_dir: Annotated[Optional[Path], typer.Argument(help="A `crosswire replay --out` folder. Left out: replay first.")] = None,
    input: Annotated[Optional[list[str]], typer.Option("--input", help="Articles to replay first (default: the gold file's `input`).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Keep the replay output here (with --input or the gold's input).")] = None,
    gold_stories: Annotated[
        bool,
        typer.Option("--gold-stories", help="Group articles by the gold file's stories instead of the linker's (scores claims without linking errors; needs a replay, not a replay folder)."),
    ] = False,
) -> None:
    """Score contradictions against a gold file: precision and recall per contradiction kind at the
    level of (story, quantity), side-level scores, and every false positive, miss and look-alike."""
    import tempfile

    from .evalclaims import GoldError, gold_assignments, load_gold, load_replay, render, score

    try:
        g = load_gold(gold)
        stories = gold_assignments(g) if gold_stories else None
    except (OSError, GoldError) as e:
        raise _fail(str(e), 2) from None
    if gold_stories and replay_dir is not None:
        raise _fail("--gold-stories replays the articles itself; leave out the replay folder", 2)
    with tempfile.TemporaryDirectory(prefix="crosswire-eval-") as tmp:
        folder = replay_dir
        if folder is None:
            from .analyse import Analyser
            from .linking import make_linker
            from .replay import replay as run_replay
            from .replay import write_outputs
            from .sources import InputError, count_records, expand, iter_records

            paths = input or ([str(g.input)] if g.input else [])
            if not paths:
                raise _fail("give a replay folder, --input, or an `input` in the gold file", 2)
            s = _settings()
            try:
                files = expand(paths)
            except InputError as e:
                raise _fail(str(e), 2) from None
            with err.status("loading the spaCy pipeline"):
                nlp = _load_nlp(s)
            with _progress(transient=True) as progress:
                task = progress.add_task("replaying", total=count_records(files))
                result = run_replay(iter_records(files), Analyser(nlp, batch_size=s.batch_size), make_linker(s),
                                    max_text_bytes=s.max_text_bytes, progress=lambda k: progress.advance(task, k), stories=stories)
            folder = out or Path(tmp)
            write_outputs(result, folder)
        try:
            rows, assignments = load_replay(folder)
        except (OSError, ValueError, KeyError) as e:
            raise _fail(str(e), 2) from None
    for part in render(score(g, rows, assignments)):
        console.print(part)


# -------------------------------------------------------------------------------------- demo


@app.command()
def demo(
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the worker to finish.")] = 240.0,
    path: Annotated[str, typer.Option(help="What to produce.")] = "seeds",
) -> None:
    """Everything in one command: start the embedded stack, a worker, produce the seed articles,
    and show the story, its contradictions and where the alerts went."""
    from .demo import run_demo

    sys.exit(run_demo(path, timeout=timeout, console=console))


@app.command("config")
def show_config() -> None:
    """Show every setting, its environment variable and its current value (secrets hidden)."""
    s = _settings()
    t = Table(title="configuration")
    for col in ("variable", "value", "meaning"):
        t.add_column(col, overflow="fold")
    for name, field in Settings.model_fields.items():
        value = getattr(s, name)
        shown = "(set, hidden)" if value is not None and "Secret" in type(value).__name__ else str(value)
        t.add_row(f"CROSSWIRE_{name.upper()}", shown, field.description or "")
    console.print(t)


@app.command("bench-links")
def bench_links(
    sizes: Annotated[str, typer.Option(help="Live-story counts to measure, comma-separated.")] = "1000,10000,100000",
    probe: Annotated[int, typer.Option(help="Articles timed per size (half join a story, half open one).")] = 500,
    out: Annotated[Path, typer.Option("--out", help="Folder for link-cost.json and link-cost.png.")] = Path("bench"),
    build: Annotated[str, typer.Option(help="'assign' opens one story per seed (fast); 'link' feeds the seeds through link() and counts merges.")] = "assign",
    seed: Annotated[int, typer.Option(help="Seed of the synthetic corpus.")] = 20240601,
    retire: Annotated[int, typer.Option(help="Also link a stream of this many stories that keep retiring (--retire-size articles each, one-day horizon) and report what the link table is written; 0 skips it.")] = 2000,
    retire_size: Annotated[int, typer.Option(help="Articles per story of the --retire stream, an hour apart (big stories make big batch journals).")] = 3,
) -> None:
    """Measure story-linking time and memory per article with N live synthetic stories (no spaCy),
    print a table and write OUT/link-cost.json and OUT/link-cost.png. Each size runs in a fresh
    process; 100,000 stories take a few minutes. With --retire, also the bytes the link table is
    written while stories retire (OUT/link-retire.json)."""
    import json
    from dataclasses import asdict

    from .benchlink import results_table, retirement_line, run_benchmark, run_retirement, write_json, write_plot
    from .linking import linker_config

    try:
        ns = [int(x.replace("_", "")) for x in sizes.split(",") if x.strip()]
    except ValueError:
        raise _fail(f"--sizes: expected comma-separated integers, got {sizes!r}", 2) from None
    if not ns or min(ns) < 1 or probe < 2 or build not in ("link", "assign") or retire < 0 or retire_size < 1:
        raise _fail("--sizes must be positive, --probe at least 2, --build 'link' or 'assign', --retire at least 0, "
                    "--retire-size at least 1", 2)
    with _progress() as progress:
        tasks: dict[str, int] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done)

        result = run_benchmark(ns, probe, seed=seed, config=linker_config(_settings()), build=build, progress=on_progress)  # type: ignore[arg-type]
        retired = (
            run_retirement(retire, per_story=retire_size, seed=seed, config=linker_config(_settings()),
                           message_limit=_settings().kafka_max_message_bytes, progress=on_progress)
            if retire else None
        )
    console.print(results_table(result))
    console.print(f"wrote {write_json(result, out / 'link-cost.json')} and {write_plot(result, out / 'link-cost.png')}")
    if retired is not None:
        console.print(retirement_line(retired))
        path = out / "link-retire.json"
        path.write_text(json.dumps(asdict(retired), indent=2) + "\n", encoding="utf-8")
        console.print(f"wrote {path}")


@app.command("bench")
def bench(
    ctx: typer.Context,
    articles: Annotated[int, typer.Option("--articles", "-n", help="N: articles in the throughput runs (and the limit).")] = 2000,
    latency_articles: Annotated[int, typer.Option(help="Articles sent by the paced producer for the latency figures.")] = 400,
    load: Annotated[float, typer.Option(help="Latency is measured at this share of the 1-worker throughput.")] = 0.5,
    growth_factor: Annotated[float, typer.Option(help="Worker memory is compared at N and at this many times N articles; 1 skips it.")] = 5.0,
    workers: Annotated[int, typer.Option(help="Worker processes of the scale-out run (compared with 1); 1 skips it.")] = 2,
    limit_processes: Annotated[bool, typer.Option(help="Also measure the spaCy limit with --workers processes at once.")] = True,
    single_thread_limit: Annotated[bool, typer.Option(help="Also measure the spaCy limit in a process with no second thread (no BLAS thread pool). With the pinned spaCy it matches the default limit; a gap means a spaCy build whose locking costs more once a process has threads, as a worker always has (about a minute).")] = True,
    alerts: Annotated[str, typer.Option(help="'stdout' (alerts printed by the worker) or 'webhook' (a local Slack stand-in).")] = "stdout",
    links: Annotated[bool, typer.Option(help="Also run the story-linking cost benchmark (minutes); without it, bench/link-cost.json is included when there.")] = False,
    search_probe: Annotated[bool, typer.Option(help="Also time the search server alone, rewriting the run's articles one per bulk (the floor under the latency figures; about 20 s).")] = True,
    ecb: Annotated[Optional[Path], typer.Option(help="ECB+ JSONL mixed into the generated articles when it exists (default: ../shared/data/ecbplus-dev.jsonl beside the repository).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the generated articles.")] = 20240601,
    out: Annotated[Path, typer.Option("--out", help="Folder for results.json and bench.png.")] = Path("bench"),
    quick: Annotated[bool, typer.Option(help="A smoke run: 40 articles, 20 for latency, growth to 2N (explicit options still win).")] = False,
) -> None:
    """Measure the pipeline against its limit, in one run: spaCy's nlp.pipe throughput with the
    worker's pipeline (1 and --workers processes), end-to-end throughput through the embedded
    broker, workers and search server, their ratio, latency produce → indexed and → alert at half
    load, 1 against --workers workers, and worker memory. Writes OUT/results.json and OUT/bench.png."""
    from .bench import BenchOptions, StallError, results_table, run_bench, write_plots, write_results
    from .embedded import EmbeddedError

    if alerts not in ("stdout", "webhook") or articles < 2 or workers < 1 or not 0 < load <= 1 or latency_articles < 0:
        raise _fail("--alerts is 'stdout' or 'webhook', --articles at least 2, --workers at least 1, --load in (0, 1]", 2)
    given = {"articles": articles, "latency_articles": latency_articles, "load": load, "growth_factor": growth_factor,
             "max_workers": workers, "limit_processes": limit_processes, "single_thread_limit": single_thread_limit, "alerts": alerts, "links": links,
             "seed": seed, "out": out, "search_probe": search_probe}
    if ecb is not None:
        given["ecb"] = ecb
    if quick:
        # the quick sizes, except where an option was given on the command line
        sizes = {"articles", "latency_articles", "growth_factor"}
        opts = BenchOptions.quick(**{k: v for k, v in given.items()
                                     if k not in sizes or getattr(ctx.get_parameter_source(k), "name", "") == "COMMANDLINE"})
    else:
        opts = BenchOptions(**given)
    with _progress() as progress:
        tasks: dict[str, int] = {}

        def on_progress(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        try:
            results = run_bench(opts, progress=on_progress, base=_settings())
        except (StallError, EmbeddedError) as e:
            raise _fail(str(e)) from None
    console.print(results_table(results))
    console.print(f"wrote {write_results(results, out / 'results.json')} and {write_plots(results, out / 'bench.png')}")


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    app()


if __name__ == "__main__":
    main()
