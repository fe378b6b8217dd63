"""Near-duplicate articles: exact copies, reprints and machine-reworded copies of one text.

A word-shingle MinHash (``LinkFeatures.fingerprint``) only sees verbatim copies: a reworded copy
("detained 14 members of the militia, including a man who..." / "the 14 members of the militia who
were detained included one man...") shares few 5-word runs with its original. What it keeps is
the sentence: one sentence of the copy for one sentence of the original, with most of the same
content words. So an article's signature is a small sketch of the *set of content lemmas* of each
of its sentences, and two articles are compared by aligning sentences.

Criterion
---------
A sentence is *eligible* when it has at least :data:`MIN_LEMMAS` distinct content lemmas (not a
stop word, not punctuation; numbers are kept, "5,200" as "5200"). A sentence of one article
*aligns* when some sentence of the other has lemma-set Jaccard ≥ :data:`SENTENCE_JACCARD`
(estimated). ``similarity(a, b)`` is the share of the better-contained article's eligible
sentences that align: for a copy of part of a longer text, the share of the shorter one. Two
articles are near-duplicates when that share is ≥ ``threshold`` (default
:data:`DUPLICATE_SHARE`) and at least :data:`MIN_ALIGNED` sentences align (all of them when an
article has fewer). So the copy must restate most of what it says, sentence for sentence;
two independent reports of one event that share a few wire sentences or a quote are not copies,
and neither are two versions of a wire story that added or replaced most of their sentences.

On the seeds (pipeline normalisation and parse) the NYT reprint 004 and the reworded NYT copy
002 align on 21 of 002's 33 sentences (0.64): a copy. Every other pair stays below 0.45: the
first Reuters flash 003 and the reworded later Reuters story 001 share 6 of 003's 14 sentences
(0.43) but differ on what was found (three commanders and 20 fighters handed to the U.S. vs 14
men questioned): two versions of a wire story, each a report in its own right. The AFP
compilation 000 borrows 4 sentences from 001 and 004 (0.18). :data:`DUPLICATE_SHARE` = 0.55 keeps
two sentences of margin on both sides. On ECB+ topics 1-20 (413 articles, 85,078 pairs) no pair
of different gold stories goes above 0.25, and 64 of the 2,437 same-story pairs reach 0.55; the
ones read by hand are wire copies or rewrites of one text (25 pairs at 1.0: one text inside
the other).

Signature and bounds
--------------------
Per eligible sentence, a b-bit MinHash: :data:`SLOTS` min-hashes of the sentence's lemma set, each
cut to its low :data:`BITS` bits, packed into :data:`WORDS_PER_SENTENCE` unsigned 32-bit ints. Only
the first :data:`MAX_SENTENCES` eligible sentences are kept (the top of an article is where a
copy shows), so a signature is at most ``1 + MAX_SENTENCES * WORDS_PER_SENTENCE`` = 257 ints; the
first int is :data:`VERSION`, and signatures of another version never compare equal. A slot of
two sentences with Jaccard J agrees with probability ``J + (1 - J) / 2**BITS``; the estimate of J
inverts that. Comparing two articles of about 35 sentences costs about 50 µs (numpy XOR and
popcount over 35 × 35 × 4 words); :func:`find_duplicate` aligns all members of a story in one
batch. Computing a signature costs about 0.1 ms per article. Deterministic across processes:
lemmas are hashed with ``zlib.crc32`` and the MinHash coefficients come from ``hashlib.blake2b``
of fixed labels.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable, Sequence

import numpy as np
from spacy.tokens import Doc

from pipeline.tokentable import TokenTable, token_table

VERSION = 1
SLOTS = 32
BITS = 4
WORDS_PER_SENTENCE = SLOTS * BITS // 32
MAX_SENTENCES = 64
MIN_LEMMAS = 4
SENTENCE_JACCARD = 0.5
DUPLICATE_SHARE = 0.55
MIN_ALIGNED = 3

_PRIME = 4294967311  # smallest prime above 2**32: a*x stays below 2**64 for x, a < 2**32
_MASK = (1 << BITS) - 1
_PER_WORD = 32 // BITS
_CHANCE = 1.0 / (1 << BITS)  # agreement of one slot between unrelated sentences


def _coefficient(label: str) -> int:
    return int.from_bytes(hashlib.blake2b(label.encode("ascii"), digest_size=4).digest(), "little")


_A = np.array([_coefficient(f"dedup-a-{k}") | 1 for k in range(SLOTS)], dtype=np.uint64)
_B = np.array([_coefficient(f"dedup-b-{k}") for k in range(SLOTS)], dtype=np.uint64)
_SHIFTS = np.arange(_PER_WORD, dtype=np.uint64) * np.uint64(BITS)
_LOW_BITS = np.uint32(sum(1 << (BITS * i) for i in range(_PER_WORD)))  # lowest bit of every slot


def _agreements_needed(jaccard: float) -> int:
    """Fewest agreeing slots whose estimate of J reaches ``jaccard``."""
    p = jaccard * (1.0 - _CHANCE) + _CHANCE
    return int(np.ceil(p * SLOTS - 1e-9))


def _sketch(sentences: Sequence[set[str]]) -> np.ndarray:
    """(len(sentences), WORDS_PER_SENTENCE) packed b-bit MinHash of each non-empty lemma set."""
    sizes = [len(s) for s in sentences]
    x = np.fromiter(
        (zlib.crc32(w.encode("utf-8")) for s in sentences for w in sorted(s)), dtype=np.uint64, count=sum(sizes)
    )
    # (a*x mod p + b) mod p for every lemma and slot; the min over a sentence's lemmas is its slot.
    h = (np.outer(x, _A) % np.uint64(_PRIME) + _B) % np.uint64(_PRIME)
    starts = np.concatenate(([0], np.cumsum(sizes[:-1], dtype=np.int64)))
    slots = np.minimum.reduceat(h, starts, axis=0) & np.uint64(_MASK)
    return (slots.reshape(len(sentences), WORDS_PER_SENTENCE, _PER_WORD) << _SHIFTS).sum(axis=2)


def signature_of_sentences(sentences: Iterable[Iterable[str]]) -> tuple[int, ...]:
    """The signature of an article given the content lemmas of each sentence, in text order.
    Sentences with fewer than :data:`MIN_LEMMAS` distinct lemmas are skipped; at most
    :data:`MAX_SENTENCES` are kept. ``()`` when no sentence is eligible."""
    kept: list[set[str]] = []
    for sent in sentences:
        lemmas = set(sent)
        if len(lemmas) >= MIN_LEMMAS:
            kept.append(lemmas)
            if len(kept) == MAX_SENTENCES:
                break
    if not kept:
        return ()
    return (VERSION, *(int(w) for w in _sketch(kept).ravel()))


def sentence_signature(doc: Doc, start_char: int = 0) -> tuple[int, ...]:
    """Signature of the sentences of ``doc`` from character ``start_char`` on (pass the title's
    length to leave the headline out: copies reword headlines freely). A sentence that straddles
    ``start_char`` keeps only its tokens after it. Reads the parse only; a ``Doc`` without
    sentence boundaries counts as one sentence."""
    sentences: list[list[str]] = []
    tt = token_table(doc)
    # A pipeline without a parser or sentencizer has no boundaries: read the text as one sentence.
    sents = tt.sentences(doc) if doc.has_annotation("SENT_START") else [doc[:]]
    for sent in sents:
        if sent.start == sent.end or tt.end_char(sent.end - 1) <= start_char:
            continue
        lemmas = [w for i in range(sent.start, sent.end) if tt.idx[i] >= start_char and (w := content_lemma(tt, i)) is not None]
        sentences.append(lemmas)
    return signature_of_sentences(sentences)


def content_lemma(tt: TokenTable, i: int) -> str | None:
    """The lemma token ``i`` contributes to its sentence's set (read from the doc's
    :func:`~pipeline.tokentable.token_table`), or ``None`` for function words and punctuation.
    Numbers are kept (without thousands separators) even when they are stop words: "14 detained"
    and "19 detained" must not read as the same sentence."""
    if tt.is_punct[i] or tt.is_space[i]:
        return None
    if tt.like_num[i]:
        return tt.lower[i].replace(",", "")
    if tt.is_stop[i] or not (tt.is_alpha[i] or tt.text[i].isalnum()):
        return None
    return tt.lemma[i] or tt.lower[i]


def _words(sig: Sequence[int]) -> np.ndarray:
    """(sentences, WORDS_PER_SENTENCE) uint32 array; no rows when the signature is not usable."""
    if len(sig) < 1 + WORDS_PER_SENTENCE or sig[0] != VERSION or (len(sig) - 1) % WORDS_PER_SENTENCE:
        return np.zeros((0, WORDS_PER_SENTENCE), dtype=np.uint32)
    return np.asarray(sig[1:], dtype=np.uint32).reshape(-1, WORDS_PER_SENTENCE)


def _hits(a: np.ndarray, b: np.ndarray, jaccard: float) -> np.ndarray:
    """(len(a), len(b)) bool: sentence pairs whose estimated lemma Jaccard is ≥ ``jaccard``."""
    v = a[:, None, :] ^ b[None, :, :]
    # A slot disagrees when its BITS-bit field of the XOR is non-zero: fold each field onto its
    # lowest bit (shifts 1, 2, ... stay inside a field's bits for a power-of-two BITS) and count.
    shift = 1
    while shift < BITS:
        v |= v >> np.uint32(shift)
        shift *= 2
    c = np.bitwise_count(v & _LOW_BITS)
    differ = sum(c[..., k] for k in range(WORDS_PER_SENTENCE))  # faster than .sum(axis=2) here
    return differ <= SLOTS - _agreements_needed(jaccard)


def alignment(a: Sequence[int], b: Sequence[int], jaccard: float = SENTENCE_JACCARD) -> tuple[int, int, int, int]:
    """``(aligned_a, n_a, aligned_b, n_b)``: how many of each article's eligible sentences align
    with some sentence of the other (estimated lemma Jaccard ≥ ``jaccard``), out of how many."""
    wa, wb = _words(a), _words(b)
    if not len(wa) or not len(wb):
        return 0, len(wa), 0, len(wb)
    hit = _hits(wa, wb, jaccard)
    return int(hit.any(axis=1).sum()), len(wa), int(hit.any(axis=0).sum()), len(wb)


def similarity(a: Sequence[int], b: Sequence[int]) -> float:
    """Share of aligned sentences of the better-contained article (for a copy of part of a longer
    text, the shorter one), in [0, 1]. Symmetric; 0.0 when either signature is empty."""
    al_a, n_a, al_b, n_b = alignment(a, b)
    if not n_a or not n_b:
        return 0.0
    return max(al_a / n_a, al_b / n_b)


def is_near_duplicate(a: Sequence[int], b: Sequence[int], threshold: float = DUPLICATE_SHARE) -> bool:
    """True when one article restates most of the other sentence by sentence: the share of
    :func:`similarity` is ≥ ``threshold`` with at least :data:`MIN_ALIGNED` aligned sentences (all
    of them when the article has fewer). Identical non-empty signatures always qualify."""
    if a and tuple(a) == tuple(b):
        return True
    return _share(*alignment(a, b), threshold) is not None


def find_duplicate(
    sig: Sequence[int], members: Sequence[tuple[str, Sequence[int]]], threshold: float = DUPLICATE_SHARE
) -> tuple[str, float] | None:
    """The member ``(article_id, similarity)`` that ``sig`` is a near-duplicate of (by
    :func:`is_near_duplicate`), the most similar one, the earliest listed on ties; ``None`` when
    there is none. All members are aligned in one batch: about ``len(sig) / 4`` × (sentences of
    all members) slot comparisons."""
    wa = _words(sig)
    usable = [(aid, w) for aid, other in members if len(w := _words(other))]
    if not len(wa) or not usable:
        return None
    sizes = np.array([len(w) for _, w in usable])
    starts = np.concatenate(([0], np.cumsum(sizes[:-1])))
    hit = _hits(wa, np.concatenate([w for _, w in usable]), SENTENCE_JACCARD)
    aligned_a = np.logical_or.reduceat(hit, starts, axis=1).sum(axis=0)  # per member
    aligned_b = np.add.reduceat(hit.any(axis=0), starts)
    best: tuple[str, float] | None = None
    n_a = len(wa)
    for i, (aid, _) in enumerate(usable):
        share = _share(int(aligned_a[i]), n_a, int(aligned_b[i]), int(sizes[i]), threshold)
        if share is not None and (best is None or share > best[1]):
            best = (aid, share)
    return best


def _share(al_a: int, n_a: int, al_b: int, n_b: int, threshold: float) -> float | None:
    """The similarity when the alignment counts make a near-duplicate, else ``None``."""
    ok = any(
        n and aligned / n >= threshold and aligned >= min(MIN_ALIGNED, n) for aligned, n in ((al_a, n_a), (al_b, n_b))
    )
    return max(al_a / n_a, al_b / n_b) if ok and n_a and n_b else None


__all__ = [
    "DUPLICATE_SHARE",
    "MAX_SENTENCES",
    "MIN_ALIGNED",
    "MIN_LEMMAS",
    "SENTENCE_JACCARD",
    "VERSION",
    "alignment",
    "content_lemma",
    "find_duplicate",
    "is_near_duplicate",
    "sentence_signature",
    "signature_of_sentences",
    "similarity",
]
