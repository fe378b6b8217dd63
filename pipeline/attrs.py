"""An exact, faster drop-in for spaCy's ``AttributeRuler``: the same patterns, the same output.

spaCy's ``AttributeRuler`` runs a ``Matcher`` over every token for every pattern (the English
models carry ~180: a tag map plus word exceptions), builds a ``Span`` per match and applies the
matches one by one. :class:`FastAttributeRuler` is a subclass (same patterns, same serialisation,
same scorer) whose ``__call__`` reaches the same result with table lookups:

* **Compile once.** Every pattern whose token specs only test plain attributes (``TAG``, ``LOWER``,
  ``DEP``, ``IS_SPACE``, ... see :data:`COMPILABLE_ATTRS`) with a value or with ``IN``/``NOT_IN``/
  ``REGEX``, without ``OP`` and without extension attributes, is compiled. Single-token specs are
  indexed by their equality (and small ``IN``) constraints, so finding the rules that hit a token
  costs a few dict lookups plus the residual checks (``NOT_IN``, ``REGEX``).
* **Memoise per token signature.** The rules that hit a token through single-token patterns depend
  only on the values of the attributes the patterns read, so the merged effect is computed once per
  distinct value tuple and cached (bounded by :data:`MEMO_SIZE`).
* **Fixed-length multi-token patterns** ("gon na", "let 's", expletive + "is") are matched from
  per-token bits over the same cache.
* **Anything else** (operators, extensions, ``MORPH`` or ``SENT_START`` tests, unknown predicates,
  an ``index`` outside the pattern) goes to a spaCy ``Matcher`` holding ONLY those patterns; its
  matches are merged in by rule number, so the component stays exact on any model.

Exactness argument (spaCy 3.8, ``AttributeRuler.match``/``set_annotations``): all matches are
found on the Doc as it was before the component ran, then applied sorted by rule number (later
rules win), each with ``set_token_attrs`` on ``span[index]``. Applications of one rule all write the
same values, so only the order between rules matters. When every rule only writes the token-local
struct fields ``POS``, ``TAG``, ``MORPH``, ``LEMMA``, ``DEP`` (the English models), applying a
token's rules in order equals writing the per-token merge of their attribute dicts, which is done in
bulk with ``Doc.from_array``. Otherwise (rules writing lexeme attributes or extensions, whose effect
can cross tokens) every hit is applied with spaCy's own ``set_token_attrs``, sorted by rule number.

The speed comes from doing less work per token, not from skipping tokens: every token still gets
every rule that hits it.
"""

# No `from __future__ import annotations` here: spaCy 3.8.6 validates a factory's arguments
# against its annotations with pydantic, which cannot resolve postponed (string) ones.

import re
from operator import itemgetter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy
from spacy.attrs import (
    DEP,
    IDS,
    LEMMA,
    LOWER,
    MORPH,
    NORM,
    ORTH,
    POS,
    PREFIX,
    SHAPE,
    SUFFIX,
    TAG,
)
from spacy.errors import Errors
from spacy.language import Language
from spacy.matcher import Matcher
from spacy.pipeline.attributeruler import AttributeRuler, attribute_ruler_score
from spacy.strings import get_string_id
from spacy.tokens import Doc, Span
from spacy.tokens._retokenize import set_token_attrs
from spacy.vocab import Vocab

FACTORY = "crosswire_attribute_ruler"

#: Attributes a compiled spec may test: ``Doc.to_array`` reads them exactly as the ``Matcher``
#: does (``get_token_attr``). Lexeme flags (``IS_*``, ``LIKE_*``; ids below 64) are added below.
#: Left out on purpose: ``MORPH`` (the Matcher normalises morph strings), ``SENT_START`` (read
#: differently), ``HEAD``/``IDX``/``ENT_IOB`` (special encodings).
COMPILABLE_ATTRS = frozenset({ORTH, LOWER, NORM, SHAPE, PREFIX, SUFFIX, LEMMA, POS, TAG, DEP})

#: Attributes whose writes are plain token-struct stores with no side effects: rules writing only
#: these are merged per token and written in bulk.
BULK_ATTRS = (POS, TAG, MORPH, LEMMA, DEP)

#: Bound of the per-signature memo (distinct attribute-value tuples, ~250 bytes each); cleared when
#: full. 200 news articles give ~16k distinct (TAG, LOWER, DEP, IS_SPACE) tuples.
MEMO_SIZE = 50_000

#: Largest cross product of ``IN`` values expanded into index keys; larger sets stay residual checks.
MAX_KEYS_PER_PATTERN = 512

_EQ, _IN, _NOT_IN, _REGEX = 0, 1, 2, 3
_FLAG_LIMIT = 64  # attr ids below this are lexeme flags (spaCy's flags_t is 64 bits)


class _Unsupported(Exception):
    """A pattern the compiler leaves to the fallback Matcher."""


class _Regex:
    """The Matcher's REGEX predicate (``re.search`` on the attribute's string), memoised per value."""

    def __init__(self, pattern: str, strings: Any) -> None:
        self.regex = re.compile(pattern)
        self.strings = strings
        self.seen: dict[int, bool] = {}

    def __call__(self, value: int) -> bool:
        hit = self.seen.get(value)
        if hit is None:
            if len(self.seen) >= MEMO_SIZE:
                self.seen.clear()
            hit = self.seen[value] = bool(self.regex.search(self.strings[value]))
        return hit


@dataclass(frozen=True)
class _Check:
    attr: int
    kind: int
    value: Any  # int (EQ), frozenset[int] (IN/NOT_IN), _Regex (REGEX)


def _attr_id(key: object) -> int:
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    if not isinstance(key, str):
        raise _Unsupported(key)
    name = key.upper()
    if name == "TEXT":
        name = "ORTH"
    attr = IDS.get(name)
    if attr is None:
        raise _Unsupported(key)
    return attr


def _compile_spec(spec: object, vocab: Vocab) -> tuple[_Check, ...]:
    """The checks of one token spec, with the Matcher's value conventions (strings hashed with
    ``StringStore.add``, booleans as 0/1, ``IN`` values by ``get_string_id``)."""
    if not isinstance(spec, dict):
        raise _Unsupported(spec)
    if not spec:
        # The Matcher's "any token" spec is the test (NULL_ATTR == 0), which holds for every token.
        return ()
    checks: list[_Check] = []
    for key, value in spec.items():
        if isinstance(key, str) and key.upper() in ("OP", "_"):
            raise _Unsupported(key)
        attr = _attr_id(key)
        if attr not in COMPILABLE_ATTRS and not (0 < attr < _FLAG_LIMIT):
            raise _Unsupported(key)
        if isinstance(value, bool):
            checks.append(_Check(attr, _EQ, int(value)))
        elif isinstance(value, int):
            checks.append(_Check(attr, _EQ, value))
        elif isinstance(value, str):
            checks.append(_Check(attr, _EQ, vocab.strings.add(value)))
        elif isinstance(value, dict):
            for op, arg in value.items():
                op_name = op.upper() if isinstance(op, str) else op
                if op_name in ("IN", "NOT_IN"):
                    if not isinstance(arg, (list, tuple)) or not all(
                        isinstance(v, (str, int)) and not isinstance(v, bool) for v in arg
                    ):
                        raise _Unsupported(value)
                    ids = frozenset(get_string_id(v) for v in arg)
                    checks.append(_Check(attr, _IN if op_name == "IN" else _NOT_IN, ids))
                elif op_name == "REGEX" and isinstance(arg, str) and attr >= _FLAG_LIMIT:
                    checks.append(_Check(attr, _REGEX, _Regex(arg, vocab.strings)))
                else:
                    raise _Unsupported(value)
        else:
            raise _Unsupported(value)
    return tuple(checks)


@dataclass(frozen=True)
class _Pattern:
    rule: int  # the AttributeRuler's pattern number (its match id); higher wins
    specs: tuple[tuple[_Check, ...], ...]
    offset: int  # token within the match that gets the attributes, from the start (>= 0)


class _Tables:
    """The compiled form of one AttributeRuler's patterns. Built once; read-only afterwards except
    for the memo."""

    def __init__(self, ruler: AttributeRuler) -> None:
        vocab = ruler.vocab
        self.rule_attrs: list[dict[Any, Any]] = list(ruler.attrs)
        singles: list[_Pattern] = []
        multis: list[_Pattern] = []
        fallback: list[tuple[int, list[Any]]] = []
        for rule in range(len(ruler.attrs)):
            got = ruler.matcher.get(str(rule))
            patterns = got[1] if got is not None else []
            index = ruler.indices[rule]
            for pattern in patterns:
                try:
                    if not isinstance(pattern, list) or not pattern:
                        raise _Unsupported(pattern)
                    n = len(pattern)
                    if not -n <= index < n:
                        raise _Unsupported(index)  # the Matcher path raises spaCy's E1001
                    compiled = _Pattern(rule, tuple(_compile_spec(s, vocab) for s in pattern), index % n)
                except _Unsupported:
                    fallback.append((rule, pattern))
                    continue
                (singles if n == 1 else multis).append(compiled)
        self.n_compiled = len(singles) + len(multis)
        self.n_fallback = len(fallback)
        self.fallback: Matcher | None = None
        if fallback:
            self.fallback = Matcher(vocab, validate=ruler.validate)
            for rule, pattern in fallback:
                self.fallback.add(str(rule), [pattern])

        # The attributes read, as columns of Doc.to_array.
        read = sorted({c.attr for p in singles + multis for spec in p.specs for c in spec})
        self.read_attrs = read
        self.col = {a: i for i, a in enumerate(read)}

        # One index over every token spec, grouped by the columns of its equality / small-IN
        # constraints. A target >= 0 is the rule of a single-token pattern; a target < 0 is the bit
        # (-target - 1) of one spec of a multi-token pattern.
        self._tables: dict[tuple[int, ...], dict[Any, list[tuple[int, tuple[_Check, ...]]]]] = {}
        self.scan: list[tuple[int, tuple[_Check, ...]]] = []
        for p in singles:
            self._index(p.rule, p.specs[0])
        self.multis = multis
        self.multi_bits: list[tuple[int, ...]] = []
        n_bits = 0
        for p in multis:
            bits = []
            for spec in p.specs:
                self._index(-n_bits - 1, spec)
                bits.append(1 << n_bits)
                n_bits += 1
            self.multi_bits.append(tuple(bits))
        self.groups = [(itemgetter(*cols), table) for cols, table in self._tables.items()]

        self.bulk = all(set(a) <= set(BULK_ATTRS) for a in self.rule_attrs)
        self.write_attrs = sorted({k for a in self.rule_attrs for k in a if k in BULK_ATTRS}) if self.bulk else []
        # Effect tables: effect 0 is "no rule"; rows are (mask, values) over write_attrs.
        self._effect_ids: dict[tuple[int, ...], int] = {(): 0}
        self._effect_rows: list[tuple[tuple[bool, ...], tuple[int, ...]]] = [
            (tuple(False for _ in self.write_attrs), tuple(0 for _ in self.write_attrs))
        ]
        self._mask = numpy.zeros((1, len(self.write_attrs)), dtype=bool)
        self._vals = numpy.zeros((1, len(self.write_attrs)), dtype=numpy.uint64)
        self._arrays_for = 1
        self.memo: dict[tuple[int, ...], tuple[tuple[int, ...], int, int]] = {}
        self._infos: dict[tuple[tuple[int, ...], int, int], tuple[tuple[int, ...], int, int]] = {}

    # ------------------------------------------------------------------ compile
    def _index(self, rule: int, spec: tuple[_Check, ...]) -> None:
        key_checks = [c for c in spec if c.kind in (_EQ, _IN)]
        # Several checks on one attribute: key on the first, keep the rest residual.
        seen: set[int] = set()
        keyed: list[_Check] = []
        for c in key_checks:
            if c.attr not in seen:
                seen.add(c.attr)
                keyed.append(c)
        size = 1
        for c in keyed:
            if c.kind == _IN:
                size *= max(len(c.value), 1)
        if size > MAX_KEYS_PER_PATTERN:
            keyed = [c for c in keyed if c.kind == _EQ]
        residual = tuple(c for c in spec if not any(c is k for k in keyed))
        if not keyed:
            self.scan.append((rule, spec))
            return
        keyed.sort(key=lambda c: c.attr)
        cols = tuple(self.col[c.attr] for c in keyed)
        table = self._tables.setdefault(cols, {})
        combos: list[tuple[int, ...]] = [()]
        for c in keyed:
            values = (c.value,) if c.kind == _EQ else tuple(c.value)
            combos = [k + (v,) for k in combos for v in values]
        for k in combos:
            # itemgetter of one column returns the value itself, not a 1-tuple
            table.setdefault(k[0] if len(k) == 1 else k, []).append((rule, residual))

    # ------------------------------------------------------------------ per-signature evaluation
    def _holds(self, checks: Iterable[_Check], sig: Sequence[int]) -> bool:
        col = self.col
        for c in checks:
            v = sig[col[c.attr]]
            if c.kind == _EQ:
                if v != c.value:
                    return False
            elif c.kind == _IN:
                if v not in c.value:
                    return False
            elif c.kind == _NOT_IN:
                if v in c.value:
                    return False
            elif not c.value(v):
                return False
        return True

    def _evaluate(self, sig: tuple[int, ...]) -> tuple[tuple[int, ...], int, int]:
        """(rules hitting a token with this signature through single-token patterns, its effect
        id, its multi-token spec bits)."""
        targets: set[int] = set()
        for key, table in self.groups:
            hits = table.get(key(sig))
            if hits:
                for target, residual in hits:
                    if target not in targets and (not residual or self._holds(residual, sig)):
                        targets.add(target)
        for target, spec in self.scan:
            if target not in targets and self._holds(spec, sig):
                targets.add(target)
        bits = 0
        for target in targets:
            if target < 0:
                bits |= 1 << (-target - 1)
        ordered = tuple(sorted(t for t in targets if t >= 0))
        info = (ordered, self.effect_id(ordered), bits)
        return self._infos.setdefault(info, info)  # shared: the memo holds few distinct values

    def lookup(self, sig: tuple[int, ...]) -> tuple[tuple[int, ...], int, int]:
        """:meth:`_evaluate`, memoised (callers try ``memo.get`` first)."""
        got = self.memo.get(sig)
        if got is None:
            if len(self.memo) >= MEMO_SIZE:
                self.memo.clear()
            got = self.memo[sig] = self._evaluate(sig)
        return got

    # ------------------------------------------------------------------ effects (bulk mode)
    def effect_id(self, rules: tuple[int, ...]) -> int:
        """The id of the merged write of ``rules`` applied in order (later rules win)."""
        eid = self._effect_ids.get(rules)
        if eid is None:
            merged: dict[int, int] = {}
            for rule in rules:
                merged.update(self.rule_attrs[rule])
            row = (
                tuple(a in merged for a in self.write_attrs),
                tuple(int(merged.get(a, 0)) for a in self.write_attrs),
            )
            eid = self._effect_ids[rules] = len(self._effect_rows)
            self._effect_rows.append(row)
        return eid

    def effect_arrays(self) -> tuple[numpy.ndarray, numpy.ndarray]:
        if self._arrays_for != len(self._effect_rows):
            self._mask = numpy.array([m for m, _ in self._effect_rows], dtype=bool).reshape(-1, len(self.write_attrs))
            self._vals = numpy.array([v for _, v in self._effect_rows], dtype=numpy.uint64).reshape(
                -1, len(self.write_attrs)
            )
            self._arrays_for = len(self._effect_rows)
        return self._mask, self._vals


class FastAttributeRuler(AttributeRuler):
    """``AttributeRuler`` with a compiled ``__call__``; everything else (``add``, ``patterns``,
    serialisation, scoring) is spaCy's. Output is identical to ``AttributeRuler`` on the same
    patterns (see the module docstring). The tables are rebuilt lazily after ``add``/``clear``."""

    def __init__(
        self,
        vocab: Vocab,
        name: str = "attribute_ruler",
        *,
        validate: bool = False,
        scorer: Callable[..., Any] | None = attribute_ruler_score,
    ) -> None:
        super().__init__(vocab, name, validate=validate, scorer=scorer)
        self._tables: _Tables | None = None

    def clear(self) -> None:
        super().clear()
        self._tables = None

    def add(self, patterns: Iterable[Any], attrs: dict[Any, Any], index: int = 0) -> None:
        super().add(patterns, attrs, index)  # type: ignore[arg-type]
        self._tables = None

    @property
    def tables(self) -> _Tables:
        """The compiled patterns (built on first use)."""
        if self._tables is None:
            self._tables = _Tables(self)
        return self._tables

    def __call__(self, doc: Doc) -> Doc:
        error_handler = self.get_error_handler()
        try:
            self.apply(doc)
            return doc
        except Exception as e:
            return error_handler(self.name, self, [doc], e)

    def apply(self, doc: Doc) -> None:
        """Set the attributes of every rule that hits a token of ``doc``, later rules winning."""
        n = len(doc)
        if n == 0 or not self.attrs:
            return
        t = self.tables
        lookup = t.lookup
        if t.read_attrs:
            arr = doc.to_array(t.read_attrs)
            if arr.ndim == 1:
                arr = arr.reshape(-1, 1)
            memo_get = t.memo.get  # the hot loop: one dict probe per token
            infos = [memo_get(sig) or lookup(sig) for sig in zip(*arr.T.tolist())]
        else:
            infos = [lookup(())] * n
        extra = self._extra_hits(doc, infos)
        if t.bulk:
            self._write_bulk(doc, t, infos, extra)
        else:
            self._write_each(doc, t, infos, extra)

    def _extra_hits(self, doc: Doc, infos: list[tuple[tuple[int, ...], int, int]]) -> dict[int, set[int]]:
        """Token index -> rules hitting it through multi-token or fallback patterns."""
        t = self.tables
        extra: dict[int, set[int]] = {}
        n = len(doc)
        if t.multis:
            bits = [info[2] for info in infos]
            candidates = [i for i, b in enumerate(bits) if b]
            if candidates:
                for p, pbits in zip(t.multis, t.multi_bits):
                    first, rest = pbits[0], pbits[1:]
                    last_start = n - len(pbits)
                    for i in candidates:
                        if i > last_start:
                            break
                        if bits[i] & first and all(bits[i + 1 + k] & b for k, b in enumerate(rest)):
                            extra.setdefault(i + p.offset, set()).add(p.rule)
        if t.fallback is not None:
            strings = self.vocab.strings
            for match_id, start, end in t.fallback(doc, allow_missing=True, as_spans=False):
                rule = int(strings[match_id])
                span = Span(doc, start, end, label=match_id)
                index = self.indices[rule]
                try:
                    token = span[index]
                except IndexError:
                    raise ValueError(
                        Errors.E1001.format(
                            patterns=self.matcher.get(span.label), span=[tok.text for tok in span], index=index
                        )
                    ) from None
                extra.setdefault(token.i, set()).add(rule)
        return extra

    def _write_bulk(
        self, doc: Doc, t: _Tables, infos: list[tuple[tuple[int, ...], int, int]], extra: dict[int, set[int]]
    ) -> None:
        if not t.write_attrs:
            return
        eids = [info[1] for info in infos]
        for i, rules in extra.items():
            eids[i] = t.effect_id(tuple(sorted(rules.union(infos[i][0]))))
        mask, vals = t.effect_arrays()
        e = numpy.fromiter(eids, dtype=numpy.intp, count=len(eids))
        current = doc.to_array(t.write_attrs)
        if current.ndim == 1:
            current = current.reshape(-1, 1)
        m = mask[e]
        if not m.any():
            return
        out = numpy.where(m, vals[e], current)
        doc.from_array(t.write_attrs, out)

    def _write_each(
        self, doc: Doc, t: _Tables, infos: list[tuple[tuple[int, ...], int, int]], extra: dict[int, set[int]]
    ) -> None:
        # Rules may write lexeme attributes or extensions, whose effect crosses tokens: apply hits
        # with spaCy's own setter in the AttributeRuler's order (by rule number).
        hits: list[tuple[int, int]] = []
        for i, info in enumerate(infos):
            rules = info[0]
            more = extra.get(i)
            if more:
                rules = tuple(set(rules) | more)
            hits.extend((rule, i) for rule in rules)
        hits.sort()
        attrs = self.attrs
        for rule, i in hits:
            set_token_attrs(doc[i], attrs[rule])


@Language.factory(
    FACTORY,
    default_config={"validate": False, "scorer": {"@scorers": "spacy.attribute_ruler_scorer.v1"}},
    default_score_weights={
        "tag_acc": 1.0,
        "pos_acc": 1.0,
        "morph_acc": 1.0,
        "morph_per_feat": None,
        "lemma_acc": 1.0,
    },
)
def make_fast_attribute_ruler(
    nlp: Language, name: str, validate: bool, scorer: Callable[..., Any] | None
) -> FastAttributeRuler:
    return FastAttributeRuler(nlp.vocab, name, validate=validate, scorer=scorer)


def swap_attribute_ruler(nlp: Language, name: str = "attribute_ruler") -> FastAttributeRuler | None:
    """Replace the ``AttributeRuler`` called ``name`` in ``nlp`` by a :class:`FastAttributeRuler`
    with the same patterns, at the same position and under the same name. Returns the new
    component, or ``None`` when ``nlp`` has no such pipe (nothing changed) or it already is one."""
    if name not in nlp.pipe_names:
        return None
    old = nlp.get_pipe(name)
    if isinstance(old, FastAttributeRuler) or not isinstance(old, AttributeRuler):
        return None
    patterns = old.patterns
    new = nlp.replace_pipe(name, FACTORY, config={"validate": old.validate})
    assert isinstance(new, FastAttributeRuler)
    new.add_patterns(patterns)  # type: ignore[arg-type]
    return new


__all__ = ["FACTORY", "FastAttributeRuler", "make_fast_attribute_ruler", "swap_attribute_ruler"]
