"""Per-token attributes of a parsed ``Doc`` as plain Python lists, read once per document.

The stages after the parse (link features, sentence signatures, claims) each loop over every token
of an article. Reading ``token.lower_`` or ``token.is_stop`` builds a spaCy ``Token`` object each
time, and ``Doc.text`` and ``Doc.sents`` build one per token on every access: on a 400-word article
that cost more than the stages' own logic. :func:`token_table` reads the same attributes with one
``Doc.to_array`` call and caches the result on the document (``doc.user_data``), so the stages
share it. Values are identical to the ``Token`` properties they stand for.

The table is a snapshot of the finished parse: a ``Doc`` whose tokens or sentence boundaries are
changed afterwards must not be read through it (a change of length is detected and rebuilds it).
"""

from __future__ import annotations

from dataclasses import dataclass

from spacy.attrs import IDX, IS_ALPHA, IS_PUNCT, IS_SPACE, IS_STOP, LEMMA, LIKE_NUM, LOWER, ORTH, SENT_START
from spacy.tokens import Doc, Span

_KEY = "crosswire.token_table"


@dataclass(frozen=True, slots=True)
class TokenTable:
    """Column ``k`` of each list is token ``k`` of the doc."""

    idx: list[int]  # token.idx
    text: list[str]  # token.text
    lower: list[str]  # token.lower_
    lemma: list[str]  # token.lemma_.lower()
    is_alpha: list[bool]
    is_punct: list[bool]
    is_space: list[bool]
    is_stop: list[bool]
    like_num: list[bool]
    sent_starts: tuple[int, ...] | None  # token index of each sentence start; None without boundaries

    def end_char(self, i: int) -> int:
        """``token.idx + len(token.text)`` of token ``i``."""
        return self.idx[i] + len(self.text[i])

    def sentences(self, doc: Doc) -> list[Span]:
        """``list(doc.sents)`` (which raises on a doc without sentence boundaries, as this does)."""
        if self.sent_starts is None or "sents" in doc.user_hooks:
            return list(doc.sents)
        if not self.sent_starts:
            return []
        ends = [*self.sent_starts[1:], len(doc)]
        return [doc[a:b] for a, b in zip(self.sent_starts, ends, strict=True)]


def token_table(doc: Doc) -> TokenTable:
    """The doc's :class:`TokenTable`, built on first use and kept in ``doc.user_data``."""
    cached = doc.user_data.get(_KEY)
    if isinstance(cached, TokenTable) and len(cached.idx) == len(doc):
        return cached
    strings = doc.vocab.strings
    memo: dict[int, str] = {}
    low: dict[int, str] = {}

    def string(h: int) -> str:
        s = memo.get(h)
        if s is None:
            s = memo[h] = strings[h]
        return s

    def lowered(h: int) -> str:
        s = low.get(h)
        if s is None:
            s = low[h] = string(h).lower()
        return s

    cols = (IDX, ORTH, LOWER, LEMMA, IS_ALPHA, IS_PUNCT, IS_SPACE, IS_STOP, LIKE_NUM, SENT_START)
    rows = doc.to_array(list(cols)).tolist() if len(doc) else []
    starts: tuple[int, ...] | None = None
    if len(doc) and doc.has_annotation("SENT_START"):
        # SENT_START is 1 at a start, -1 inside a sentence (0: unknown, which Doc.sents reads as inside)
        starts = (0, *(i for i in range(1, len(rows)) if rows[i][9] == 1))
    elif not len(doc):
        starts = ()
    table = TokenTable(
        idx=[r[0] for r in rows],
        text=[string(r[1]) for r in rows],
        lower=[string(r[2]) for r in rows],
        lemma=[lowered(r[3]) for r in rows],
        is_alpha=[bool(r[4]) for r in rows],
        is_punct=[bool(r[5]) for r in rows],
        is_space=[bool(r[6]) for r in rows],
        is_stop=[bool(r[7]) for r in rows],
        like_num=[bool(r[8]) for r in rows],
        sent_starts=starts,
    )
    doc.user_data[_KEY] = table
    return table


__all__ = ["TokenTable", "token_table"]
