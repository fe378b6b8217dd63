"""Story-linking features read from the one spaCy pass: tokens, lemmas, entity keys, salient
numbers, a MinHash fingerprint of the body and its sentence signature (:mod:`pipeline.dedup`).

Contract: :func:`link_features` only reads the ``Doc``; it never runs a second NLP pass and costs
well under a millisecond per article beyond the parse. Fingerprints are deterministic across
processes and machines (fixed seeds, ``zlib.crc32``; never Python's salted ``hash()``).
"""

from __future__ import annotations

import re
import zlib
from bisect import bisect_left
from collections.abc import Iterable, Sequence

import numpy as np
from spacy.tokens import Doc, Span

from pipeline.dedup import sentence_signature
from pipeline.tokentable import token_table
from pipeline.types import LinkFeatures

#: Entity labels that are quantities or times, not things a story is about; salient ones go to
#: ``numbers`` instead ("Friday" as an entity key would join every Friday's news).
NUMBER_LABELS = frozenset({"CARDINAL", "ORDINAL", "QUANTITY", "PERCENT", "MONEY", "DATE", "TIME"})
#: Labels whose normalised text is kept in ``numbers`` (dates and amounts tell two earthquakes apart).
SALIENT_NUMBER_LABELS = frozenset({"DATE", "CARDINAL", "QUANTITY", "PERCENT", "MONEY", "TIME"})

SHINGLE = 5
N_HASHES = 64
_PRIME = np.uint64(4294967311)  # smallest prime above 2**32: a*x stays below 2**64 for x, a < 2**32
_rng = np.random.default_rng(20180601)  # fixed seed: signatures must agree across processes
_A = _rng.integers(1, 2**32 - 1, size=N_HASHES, dtype=np.uint64)
_B = _rng.integers(0, 2**32 - 1, size=N_HASHES, dtype=np.uint64)
del _rng

_NON_WORD = re.compile(r"[^0-9a-z.]+")
# Small cardinals ("two officials", "one of them") are everywhere and keep no two events apart.
_SMALL_NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten a an several few some many dozens".split()
)


#: Longer tokens, entity names and number phrases are not terms (an inline base64 blob, a run of
#: glued words): left out, so that no story's state (a term is kept in several sub-vectors, its
#: document frequencies and its members) outgrows a Kafka message because of one article.
MAX_TERM_CHARS = 64
MAX_KEY_CHARS = 120

# A title that is a web address (scrapers put the URL where the headline was missing). The
# tokenizer may have spaced it out ("http: / / www. x. com / ..."), so spaces are ignored.
_URL = re.compile(r"^(?:https?:/*|www\.)[^\s]+$", re.IGNORECASE)
_SLUG_SPLIT = re.compile(r"[^0-9a-z]+")
_URL_YEAR = re.compile(r"(?<![0-9])(19[5-9][0-9]|20[0-4][0-9])(?![0-9])")
_URL_NOISE = frozenset("http https www com org net html htm php asp aspx shtml stm cms index news story article".split())


def is_url(title: str) -> bool:
    """True when ``title`` is a web address rather than a headline (spaces ignored)."""
    return bool(_URL.match("".join(title.split())))


def url_words(url: str) -> tuple[list[str], list[str]]:
    """(words, years) of a URL's path: the slug words a publisher put there (host, file
    extensions and numeric ids dropped) and the years of a dated path (``/2012/07/07/``)."""
    compact = "".join(url.split()).lower()
    compact = re.sub(r"^(?:https?:/*)?", "", compact)
    _host, _, path = compact.partition("/")
    words = [w for w in _SLUG_SPLIT.split(path) if w and w.isalpha() and 1 < len(w) <= MAX_TERM_CHARS and w not in _URL_NOISE]
    years = list(dict.fromkeys(_URL_YEAR.findall(path)))
    return words, years


def entity_key(ent: Span) -> str:
    """The linking key of an entity: its canonical name when the alias component set one."""
    key = None
    if Span.has_extension("canonical"):
        key = ent._.canonical
    text = key if isinstance(key, str) and key.strip() else ent.text
    text = " ".join(text.lower().split())
    if text.startswith("the "):
        text = text[4:]
    return text


def normalise_number(text: str) -> str | None:
    """Lowercased, punctuation-free form of a number or date phrase; ``None`` when it is not
    salient (a lone small count word such as "two" or "several")."""
    norm = _NON_WORD.sub(" ", text.lower()).strip(" .")
    norm = " ".join(w for w in norm.split() if w not in {"the", "of", "about", "some", "more", "than"})
    if not norm or norm in _SMALL_NUMBER_WORDS:
        return None
    if norm.isdigit() and len(norm) == 1:
        return None
    return norm


def fingerprint(text_tokens: Sequence[str], shingle: int = SHINGLE) -> tuple[int, ...]:
    """MinHash signature (``N_HASHES`` ints) of the word ``shingle``-grams of ``text_tokens``.

    Texts shorter than one shingle hash as a single shingle; an empty input gives ``()``.
    """
    toks = list(text_tokens)
    if not toks:
        return ()
    if len(toks) < shingle:
        grams = [" ".join(toks)]
    else:
        grams = [" ".join(toks[i : i + shingle]) for i in range(len(toks) - shingle + 1)]
    base = np.fromiter((zlib.crc32(g.encode("utf-8")) for g in set(grams)), dtype=np.uint64)
    # (a*x mod p + b) mod p, one row per shingle; the min over shingles is each hash's signature.
    sig = ((np.outer(base, _A) % _PRIME + _B) % _PRIME).min(axis=0)
    return tuple(int(v) for v in sig)


def jaccard_estimate(a: Sequence[int], b: Sequence[int]) -> float:
    """Fraction of agreeing MinHash slots: an unbiased estimate of the shingle-set Jaccard.
    0.0 when either signature is empty or they have different lengths."""
    if not a or len(a) != len(b):
        return 0.0
    return sum(1 for x, y in zip(a, b, strict=True) if x == y) / len(a)


def _dedupe(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def link_features(doc: Doc, title_end: int) -> LinkFeatures:
    """Features of one article for :class:`pipeline.link.StoryLinker`.

    ``doc`` is the parse of ``title + "\\n\\n" + body``; tokens starting before character
    ``title_end`` belong to the title. Tokens and lemmas keep repeats (the linker counts term
    frequency); entity keys keep one entry per mention; ``numbers`` is de-duplicated.
    """
    title_tokens: list[str] = []
    body_tokens: list[str] = []
    title_lemmas: list[str] = []
    body_lemmas: list[str] = []
    shingle_words: list[str] = []
    numbers: list[str] = []
    # A URL title is not a headline: its scheme, host and file syntax ("http", "www", "html")
    # would make every URL-titled article look alike. Its slug words stand in for the title
    # tokens (no entities: the parser cannot read them there) and the years of a dated path
    # count as dates the article names.
    tt = token_table(doc)
    n_title = bisect_left(tt.idx, title_end)  # tokens that start before title_end
    title_text = doc[:n_title].text_with_ws[:title_end]  # doc.text[:title_end], without reading the body
    url_title = title_end > 0 and is_url(title_text)
    if url_title:
        slug, years = url_words(title_text)
        title_tokens.extend(slug)
        title_lemmas.extend(slug)
        numbers.extend(years)

    # a term: no punctuation, space or stop word, not too long, alphabetic or alphanumeric (read
    # from the token table: no Token object per word)
    lower, text = tt.lower, tt.text
    for i in range(n_title if url_title else 0, len(lower)):
        in_title = i < n_title
        if not in_title and (tt.is_alpha[i] or tt.like_num[i]):
            shingle_words.append(lower[i])
        if tt.is_punct[i] or tt.is_space[i] or tt.is_stop[i] or len(text[i]) > MAX_TERM_CHARS:
            continue
        if not (tt.is_alpha[i] or text[i].isalnum()):
            continue
        lemma = tt.lemma[i] or lower[i]
        if in_title:
            title_tokens.append(lower[i])
            title_lemmas.append(lemma)
        else:
            body_tokens.append(lower[i])
            body_lemmas.append(lemma)

    title_entities: list[str] = []
    body_entities: list[str] = []
    title_labels: list[str] = []
    body_labels: list[str] = []
    for ent in doc.ents:
        if url_title and ent.start_char < title_end:
            continue
        if ent.label_ in SALIENT_NUMBER_LABELS:
            num = normalise_number(ent.text)
            if num is not None and len(num) <= MAX_TERM_CHARS:
                numbers.append(num)
        if ent.label_ in NUMBER_LABELS:
            continue
        key = entity_key(ent)
        if not key or len(key) > MAX_KEY_CHARS:
            continue
        if ent.start_char < title_end:
            title_entities.append(key)
            title_labels.append(ent.label_)
        else:
            body_entities.append(key)
            body_labels.append(ent.label_)

    return LinkFeatures(
        title_tokens=tuple(title_tokens),
        body_tokens=tuple(body_tokens),
        title_lemmas=tuple(title_lemmas),
        body_lemmas=tuple(body_lemmas),
        title_entities=tuple(title_entities),
        body_entities=tuple(body_entities),
        numbers=_dedupe(numbers),
        fingerprint=fingerprint(shingle_words),
        sentences=sentence_signature(doc, title_end),
        title_entity_labels=tuple(title_labels),
        body_entity_labels=tuple(body_labels),
    )


__all__ = [
    "N_HASHES",
    "SHINGLE",
    "entity_key",
    "fingerprint",
    "jaccard_estimate",
    "link_features",
    "is_url",
    "normalise_number",
    "url_words",
]
