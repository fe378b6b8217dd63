"""Learn the story linker's logistic weights by replaying a labelled stream.

The stream is replayed in file order with gold clusters as stories (teacher forcing, as Miranda
et al. 2018 train): for each article, every candidate the linker's index proposes becomes one
training pair, positive when the candidate is the article's gold story. An L2-regularised
logistic regression (Newton's method, numpy) is fitted on those pairs, so the output is a
probability of "same story" and the default threshold 0.5 means what it says.

The ``timed`` model is fitted only when the data has enough dated pairs; otherwise it is the
content model plus a hand-set prior on the time-decay features (documented in the output).

Features are computed exactly as the worker computes them (parse, normalise, title split, spaCy
pipeline from the settings, :func:`pipeline.features.link_features`), so the weights are fitted on
what the linker will see. The shipped ``pipeline/resources/link_weights.json`` was trained on ECB+
topics 1-20 (``../shared/data/ecbplus-dev.jsonl``: 413 articles, 36 stories, no dates, so the
timed model is the prior) with the default :class:`~pipeline.link.LinkerConfig` and ``l2=1``::

    python -m pipeline.linktrain ../shared/data/ecbplus-dev.jsonl \
        --out pipeline/resources/link_weights.json --cv 10

``--join`` also fits the separate join-or-new model (:func:`collect_join_pairs`); it is not
shipped because it measured worse (see :mod:`pipeline.link`). ``--cv 10`` also prints the
two-fold topic cross-validation (train on topics 1-10, test on 11-20,
and back), the number to quote for generalisation; the in-sample score flatters.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.link import (
    EVIDENCE_FEATURES,
    JOIN_FEATURES,
    TIME_FEATURES,
    LinkerConfig,
    LinkWeights,
    LogisticModel,
    StoryLinker,
    join_features,
)
from pipeline.linkeval import Row, load_pipeline_nlp, read_rows, replay, score
from pipeline.types import LinkFeatures

#: Used when the training data has no dates. A same-day candidate gains one logit over the content
#: model (1.5 + 1.0 - 1.5), a 3-day-old one about 0, and one quiet for a week or more loses about
#: 1.3. The shift was -1.0 (a same-day candidate gained 1.5). ``crosswire eval-links FILE --orders
#: 20 --dates same|spread`` on ECB+ dev (BCubed F1, mean of 20 orders; a helper script, paired
#: orders): -1.0 / -1.5 / -2.0 gave 0.872 / 0.879 / 0.889 with every article on one day (time says
#: nothing there, as on a busy day of a real stream, and the bonus joins same-kind stories), and
#: 0.940 / 0.939 / 0.935 with each story on its own day of a month. -2.0 also split the invented
#: quake story (``tests/data/quake``: one report of the same day fell to p 0.43), so -1.5.
TIME_PRIOR = {"ts_newest": 1.5, "ts_mean": 1.0}
TIME_PRIOR_BIAS_SHIFT = -1.5
MIN_TIMED_POSITIVES = 50
#: "miss" features (share of the article's weight on terms the story never used) only where
#: they tell two events of one kind apart: names, numbers/dates, words.
MISS_FEATURES = ("miss_entities_all", "miss_numbers_all", "miss_tokens_all", "miss_people_all")


def default_features(config: LinkerConfig) -> list[str]:
    """A cosine per configured sub-vector plus the :data:`MISS_FEATURES` it has."""
    cos = [f"cos_{s}" for s in config.subvectors]
    return cos + [m for m in MISS_FEATURES if m[len("miss_") :] in config.subvectors] + list(EVIDENCE_FEATURES)


def collect_pairs(
    rows: Sequence[Row],
    feats: Sequence[LinkFeatures],
    config: LinkerConfig,
    *,
    mode: str = "gold",
    top_only: bool = False,
) -> tuple[list[dict[str, float]], list[int], list[bool]]:
    """(features, label, timed) of (article, candidate story) pairs of one replay.

    ``mode="gold"`` replays the gold clusters (teacher forcing): a candidate is positive when it
    is the article's gold story. ``mode="self"`` lets the linker (with ``config.weights``) decide,
    as it will online, and a candidate is positive when most of its members share the article's
    gold story; this shows the model the fragmented stories it really meets. ``top_only`` keeps
    only the most probable candidate of each article: the pair the join/new decision is about.
    """
    linker = StoryLinker(config)
    members: dict[str, Counter[str]] = defaultdict(Counter)
    xs: list[dict[str, float]] = []
    ys: list[int] = []
    timed: list[bool] = []
    for r, f in zip(rows, feats, strict=True):
        if r.story is None:
            raise ValueError(f"row {r.id} has no gold 'story'")
        cands = linker.candidates(f, r.published)
        if top_only and cands:
            cands = [max(cands, key=lambda c: c.probability)]
        for c in cands:
            if mode == "gold":
                label = c.story == r.story
            else:
                label = members[c.story].most_common(1)[0][0] == r.story
            xs.append(c.features)
            ys.append(int(label))
            timed.append(c.timed)
        if mode == "gold":
            linker.assign(r.id, f, r.published, r.story)
        else:
            members[linker.link(r.id, f, r.published).story][r.story] += 1
    return xs, ys, timed


def collect_join_pairs(
    rows: Sequence[Row], feats: Sequence[LinkFeatures], config: LinkerConfig, *, mode: str = "gold"
) -> tuple[list[dict[str, float]], list[int]]:
    """(features, label) of the join-or-new decision: one pair per article that has a candidate,
    about its most probable candidate under ``config.weights`` (:func:`pipeline.link.join_features`).
    Positive when that candidate is the article's story: its gold story (``mode="gold"``, gold
    clusters replayed) or the story most of whose members share the article's gold story
    (``mode="self"``, the linker deciding as it will online). The first article of a gold story
    always gives a negative: the "new story" examples."""
    linker = StoryLinker(config)
    members: dict[str, Counter[str]] = defaultdict(Counter)
    xs: list[dict[str, float]] = []
    ys: list[int] = []
    for r, f in zip(rows, feats, strict=True):
        if r.story is None:
            raise ValueError(f"row {r.id} has no gold 'story'")
        best, x = join_features(linker.candidates(f, r.published))
        if best is not None:
            if mode == "gold":
                label = best.story == r.story
            else:
                label = members[best.story].most_common(1)[0][0] == r.story
            xs.append(x)
            ys.append(int(label))
        if mode == "gold":
            linker.assign(r.id, f, r.published, r.story)
        else:
            members[linker.link(r.id, f, r.published).story][r.story] += 1
    return xs, ys


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 50) -> tuple[float, np.ndarray]:
    """L2-regularised logistic regression by Newton's method; the bias is not penalised.
    Returns (bias, weights)."""
    n, d = x.shape
    xb = np.hstack([np.ones((n, 1)), x])
    w = np.zeros(d + 1)
    reg = np.full(d + 1, l2)
    reg[0] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ w, -30, 30)))
        g = xb.T @ (p - y) + reg * w
        h = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(reg) + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(h, g)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return float(w[0]), w[1:]


def _model(xs: list[dict[str, float]], ys: list[int], names: Sequence[str], l2: float) -> LogisticModel:
    x = np.array([[v.get(n, 0.0) for n in names] for v in xs], dtype=float).reshape(len(xs), len(names))
    bias, w = fit_logistic(x, np.array(ys, dtype=float), l2=l2)
    return LogisticModel(bias=round(bias, 4), weights={n: round(float(v), 4) for n, v in zip(names, w, strict=True)})


def _fit(
    xs: list[dict[str, float]], ys: list[int], timed: list[bool], names: list[str], l2: float
) -> tuple[LogisticModel, LogisticModel, str]:
    if not any(ys):
        raise ValueError("no positive pair: the data has no story with two articles")
    content = _model(xs, ys, names, l2)
    t_idx = [i for i, t in enumerate(timed) if t]
    if sum(ys[i] for i in t_idx) >= MIN_TIMED_POSITIVES:
        timed_model = _model([xs[i] for i in t_idx], [ys[i] for i in t_idx], names + list(TIME_FEATURES), l2)
        return content, timed_model, "fitted"
    timed_model = LogisticModel(
        bias=round(content.bias + TIME_PRIOR_BIAS_SHIFT, 4), weights={**content.weights, **TIME_PRIOR}
    )
    return content, timed_model, "prior: content model + hand-set time-decay weights (too few dated pairs)"


def train(
    rows: Sequence[Row],
    feats: Sequence[LinkFeatures],
    config: LinkerConfig | None = None,
    *,
    features: Sequence[str] | None = None,
    l2: float = 1.0,
    rounds: int = 1,
    top_only: bool = False,
    join: bool = False,
    join_l2: float | None = None,
) -> LinkWeights:
    """Fit the content (and, with enough dated pairs, the timed) model on a labelled replay.

    First on all candidate pairs of the gold replay; then ``rounds`` times on those plus the
    pairs of a replay where the linker decides with the weights so far (``mode="self"``,
    ``top_only`` pairs), so the threshold is calibrated on the decisions the linker makes.
    ``features`` picks the content features (default: a cosine per configured sub-vector).
    """
    config = config or LinkerConfig(weights=_placeholder())
    names = list(features) if features is not None else default_features(config)
    join_names = names + list(JOIN_FEATURES)
    jl2 = l2 if join_l2 is None else join_l2
    gx, gy, gt = collect_pairs(rows, feats, config, mode="gold")
    content, timed_model, note = _fit(gx, gy, gt, names, l2)
    n_pairs, n_pos = len(gy), sum(gy)
    join_model: LogisticModel | None = None
    jx: list[dict[str, float]] = []
    jy: list[int] = []

    def weights() -> LinkWeights:
        return LinkWeights(content=content, timed=timed_model, join=join_model)

    if join:
        jx, jy = collect_join_pairs(rows, feats, config.model_copy(update={"weights": weights()}), mode="gold")
        join_model = _model(jx, jy, join_names, jl2)
    for _ in range(rounds):
        cfg = config.model_copy(update={"weights": weights()})
        sx, sy, st = collect_pairs(rows, feats, cfg, mode="self", top_only=top_only)
        if join:
            sjx, sjy = collect_join_pairs(rows, feats, cfg, mode="self")
        content, timed_model, note = _fit(gx + sx, gy + sy, gt + st, names, l2)
        n_pairs, n_pos = len(gy) + len(sy), sum(gy) + sum(sy)
        if join:
            # Join pairs from the gold replay with the new ranker, plus the linker's own decisions.
            jx, jy = collect_join_pairs(rows, feats, config.model_copy(update={"weights": weights()}), mode="gold")
            join_model = _model(jx + sjx, jy + sjy, join_names, jl2)
    return LinkWeights.model_validate(
        {
            "content": content,
            "timed": timed_model,
            "join": join_model,
            "pairs": n_pairs,
            "positives": int(n_pos),
            "l2": l2,
            "rounds": rounds,
            "subvectors": list(config.subvectors),
            "timed_model": note,
        }
    )


def worker_features(path: Path, nlp: Any) -> tuple[list[Row], list[LinkFeatures]]:
    """Rows of a labelled JSONL file and their link features as the worker computes them
    (parse, normalise, title split, spaCy, :func:`pipeline.features.link_features`)."""
    from pipeline.analyse import Analyser
    from pipeline.article import parse_article

    rows = read_rows(path)
    with open(path, encoding="utf-8") as fh:
        articles = [parse_article(line) for line in fh if line.strip()]
    analysed = Analyser(nlp).analyse(articles)
    return rows, [a.features for a in analysed]


def _topic(story: str) -> str:
    # ECB+ stories are "<topic>-ecb" / "<topic>-ecbplus"; other data has one story per "topic".
    return story.split("-")[0]


def cross_validate(
    rows: Sequence[Row],
    feats: Sequence[LinkFeatures],
    config: LinkerConfig,
    folds: Sequence[tuple[set[str], set[str]]],
    **kw: Any,
) -> list[dict[str, Any]]:
    """Train on the rows whose topic is in the first set of a fold, link and score the rows of
    the second set (in file order, fresh linker). Returns one :func:`pipeline.linkeval.score` per fold."""
    out = []
    for train_topics, test_topics in folds:
        tr = [i for i, r in enumerate(rows) if r.story is not None and _topic(r.story) in train_topics]
        te = [i for i, r in enumerate(rows) if r.story is not None and _topic(r.story) in test_topics]
        w = train([rows[i] for i in tr], [feats[i] for i in tr], config, **kw)
        test_rows = [rows[i] for i in te]
        cfg = config.model_copy(update={"weights": w})
        decisions = [d for _, d in replay(test_rows, [feats[i] for i in te], cfg)]
        out.append(score(test_rows, decisions))
    return out


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="labelled JSONL: id, title, text, story[, published]")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument(
        "--join", action="store_true",
        help="also fit the separate join-or-new model (Miranda et al.'s merge model; worse on ECB+, see train())",
    )
    ap.add_argument(
        "--cv", type=int, default=None, metavar="N",
        help="also print a two-fold cross-validation: numbered topics <= N against the rest (ECB+: 10)",
    )
    args = ap.parse_args(argv)
    rows, feats = worker_features(args.data, load_pipeline_nlp())
    config = LinkerConfig(weights=_placeholder())
    weights = train(rows, feats, config, l2=args.l2, join=args.join)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(weights.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8")
    print(json.dumps(weights.model_dump(mode="json")["content"], indent=2))
    if args.cv is not None:
        topics = {_topic(r.story) for r in rows if r.story is not None}
        a = {t for t in topics if t.isdigit() and int(t) <= args.cv}
        b = topics - a
        folds = [(a, b), (b, a)]
        for (_, te), res in zip(folds, cross_validate(rows, feats, config, folds, l2=args.l2, join=args.join), strict=True):
            bc = res["bcubed"]
            order = sorted(te, key=lambda t: (len(t), t))
            print(
                f"test topics {order[0]}..{order[-1]}: BCubed P/R/F1 {bc['p']:.3f}/{bc['r']:.3f}/{bc['f1']:.3f}, "
                f"{res['pred_stories']}/{res['gold_stories']} stories"
            )


def _placeholder() -> LinkWeights:
    # Training reads candidates and features only; the weights of the config are never used.
    return LinkWeights(content=LogisticModel(), timed=LogisticModel())


if __name__ == "__main__":
    main()
