"""Alias folding: one canonical name per real-world entity, however a report spells it.

The table (``config/aliases.yaml``) lists canonical names with their acronyms, transliterations and
translations, and part-of relations between entities. :class:`AliasTable` answers three questions:

* :meth:`AliasTable.canonical`: which entity is this mention? (the entity key used for linking)
* :meth:`AliasTable.relation`: are two names the same entity, one part of the other, or different?
* :meth:`AliasTable.patterns`: spaCy EntityRuler patterns so that listed names get the right label.

Unlisted transliteration variants are matched guardedly (RESEARCH.md §3): the consonant
:func:`skeleton` of the mention must equal that of a listed name AND every distinctive token must be
similar to the token in the same place. Token-set containment is never used: "Hezbollah" is not
"Kataib Hezbollah".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator
from rapidfuzz import fuzz

Relation = Literal["same", "part_of", "contains", "different"]

#: Bound of the per-table LRU cache of :meth:`AliasTable.canonical`, in distinct (name, label)
#: pairs. A worker sees a few thousand distinct entity surface forms a day; 16k entries of short
#: strings is about 3 MB and keeps the hit rate high without growing forever.
CANONICAL_CACHE_SIZE = 16_384

#: Lowest rapidfuzz ``ratio`` (0-100) between two folded tokens in the same place for a
#: skeleton match of a multi-token name to count ("hizbalah"/"hezbolah" = 75, "hamas"/"homs" = 67).
TOKEN_SIMILARITY = 72.0

#: The same for one-token names, which carry less evidence ("briton"/"britain" = 77 must fail,
#: "hizbolah"/"hezbolah" = 88 and "suleimani"/"soleimani" = 89 pass).
SINGLE_TOKEN_SIMILARITY = 85.0

#: Skeletons with fewer consonants than this are too short to tell names apart ("Iran" and "Oran"
#: are both ``rn``): such mentions must equal a listed name after folding.
MIN_SKELETON_CONSONANTS = 4

_APOSTROPHES = "'’‘`´ʿʾʼ′"
_APOSTROPHE_RE = re.compile(f"[{_APOSTROPHES}]")
_VOWELS_RE = re.compile(r"[aeiouy]")  # y alternates with i/e in transliteration: Sayyid/Said, Soleimani/Suleymani
_DOUBLE_RE = re.compile(r"(.)\1+")
_NON_TOKEN_RE = re.compile(r"[^a-z0-9\s-]")
# "al-", "el-", "ul-" and the assimilated article before sun letters ("ash-Shaabi", "ad-Din").
_ARTICLE_PREFIX_RE = re.compile(r"^(?:al|el|ul)-|^a(sh|th|dh|[dnrstz])-(?=\1)")
_ARTICLE_TOKENS = frozenset({"al", "el", "ul", "the"})
_DIGRAPHS = (("kh", "k"), ("gh", "g"), ("dh", "d"), ("th", "t"), ("ph", "f"), ("q", "k"))

# Display folding.
_SPACE_RE = re.compile(r"\s+")
_LINE_HYPHEN_RE = re.compile(r"(?<=[^\W\d_])-\s+(?=[a-z])")  # "al-Ka- dhimi": a hyphen left by line wrapping
_EDGE_PUNCT = " \t\n\"“”«»,;:!?*|"
_BRACKETS = (("(", ")"), ("[", "]"), ("{", "}"))
_LEADING_THE_RE = re.compile(r"^the\s+", re.IGNORECASE)
_POSSESSIVE_RE = re.compile(r"'s$|(?<=[^\W\d_])'$", re.IGNORECASE)  # "Iraq's" -> "Iraq", "Houthis'" -> "Houthis"

# Prefixes that are not part of a name ("Prime Minister Mustafa al-Kadhimi"), tried only when the
# whole mention does not match. Longest first.
_HONORIFICS = tuple(
    sorted(
        (
            "president",
            "prime minister",
            "pm",
            "premier",
            "general",
            "gen.",
            "gen",
            "lt. gen.",
            "maj. gen.",
            "brig. gen.",
            "colonel",
            "col.",
            "minister",
            "foreign minister",
            "defence minister",
            "defense minister",
            "mr",
            "mr.",
            "mrs",
            "mrs.",
            "ms",
            "ms.",
            "dr",
            "dr.",
            "sheikh",
            "shaikh",
            "sayyed",
            "sayyid",
            "ayatollah",
            "grand ayatollah",
            "cleric",
            "king",
            "prince",
            "commander",
            "spokesman",
        ),
        key=len,
        reverse=True,
    )
)
# Descriptive heads that NER sometimes glues to a name ("Kataib Hizballah militia"), dropped only
# when the rest matches a listed entity.
_GENERIC_TAILS = frozenset({"militia", "militias", "group", "faction", "movement", "organization", "organisation"})


# --------------------------------------------------------------------------- folding helpers


def _ascii(text: str) -> str:
    """Accents off, non-Latin letters dropped: "Türkiye" -> "Turkiye"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).encode("ascii", "ignore").decode("ascii")


def _phonetic_tokens(name: str) -> list[str]:
    """Lower-cased ASCII tokens with articles dropped, digraphs folded and doubled letters
    collapsed, vowels kept: the forms that are compared token by token after a skeleton match."""
    text = _ascii(_APOSTROPHE_RE.sub("", name)).lower().replace(".", "")
    text = _NON_TOKEN_RE.sub(" ", text)
    out: list[str] = []
    for token in text.split():
        if token in _ARTICLE_TOKENS:
            continue
        token = _ARTICLE_PREFIX_RE.sub("", token).replace("-", "")
        for digraph, letter in _DIGRAPHS:
            token = token.replace(digraph, letter)
        token = _DOUBLE_RE.sub(r"\1", token)
        if token and token not in _ARTICLE_TOKENS:
            out.append(token)
    return out


def _consonants(token: str) -> str:
    return _VOWELS_RE.sub("", token)


def skeleton(name: str) -> str:
    """The consonant skeleton key of a name (RESEARCH.md §3), one key per token joined by spaces.

    Per token: fold to ASCII, lower-case, drop apostrophes, dots and the article ("al-", "el-",
    "the", sun-letter forms such as "ash-"), drop hyphens, fold kh->k, gh->g, dh->d, th->t, ph->f,
    q->k, collapse doubled letters, then drop the vowels a e i o u AND y (y stands for i/e in
    transliteration: Sayyid/Said). w is kept: it is a consonant in the usual transliterations.
    Tokens left empty are dropped.

    >>> skeleton("Kata'ib Hizbullah"), skeleton("Kataib Sayyid al-Shuhada")
    ('ktb hzblh', 'ktb sd shhd')
    """
    return " ".join(c for c in (_consonants(t) for t in _phonetic_tokens(name)) if c)


def _distinctive(name: str) -> list[str]:
    """Phonetic tokens that have consonants: the tokens a fuzzy match must account for one by one."""
    return [t for t in _phonetic_tokens(name) if _consonants(t)]


def _key(name: str) -> str:
    """Exact-match key: ASCII, case-folded, letters and digits only ("U.S." and "US" -> "us",
    "Counter-Terrorism" and "Counterterrorism" -> "counterterrorism")."""
    return "".join(c for c in _ascii(name).casefold() if c.isalnum())


def _is_acronym(alias: str) -> bool:
    letters = [c for c in alias if c.isalpha()]
    return bool(letters) and len(letters) <= 6 and not any(c.islower() for c in letters)


def _looks_like_acronym_use(mention: str) -> bool:
    """Whether a mention may be read as an acronym: at least half its letters are capitals
    ("PMF", "uS" from small caps), so that "us" or "who" in prose never becomes an organisation."""
    letters = [c for c in mention if c.isalpha()]
    return bool(letters) and 2 * sum(c.isupper() for c in letters) >= len(letters)


def _fold_step(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = _APOSTROPHE_RE.sub("'", text)
    text = _LINE_HYPHEN_RE.sub("", text)
    text = _strip_brackets(_SPACE_RE.sub(" ", text).strip(_EDGE_PUNCT))
    stripped = _LEADING_THE_RE.sub("", text)
    if stripped:
        text = stripped
    stripped = _POSSESSIVE_RE.sub("", text).rstrip(_EDGE_PUNCT)
    if stripped:
        text = stripped
    letters = [c for c in text if c.isalpha()]
    if len(letters) >= 7 and not any(c.islower() for c in letters):
        # A headline or dateline in capitals ("BAGHDAD"): not an acronym at that length.
        text = " ".join(_capitalise(w.lower()) for w in text.split(" "))
    return text


def _strip_brackets(text: str) -> str:
    """Drop an unbalanced bracket at either end ("(PMF" -> "PMF"); "Georgia (country)" stays."""
    for opening, closing in _BRACKETS:
        if text.endswith(closing) and opening not in text:
            text = text[:-1]
        if text.startswith(opening) and closing not in text:
            text = text[1:]
    return text.strip(_EDGE_PUNCT)


def fold_name(name: str) -> str:
    """The display normal form of a mention: NFKC, one kind of apostrophe, line-wrap hyphens
    repaired ("al-Ka- dhimi" -> "al-Kadhimi"), whitespace collapsed, surrounding quotes and
    unbalanced brackets, a leading "the" and a possessive "'s" stripped, long all-capital names title-cased.
    Case is otherwise kept as written. Idempotent: ``fold_name(fold_name(x)) == fold_name(x)``."""
    text = name
    for _ in range(8):  # each step only removes; a fixed point comes within a couple of rounds
        folded = _fold_step(text)
        if folded == text:
            return text
        text = folded
    return text


def _capitalise(word: str) -> str:
    """Upper-case the first letter of each hyphen part except a leading article: "al-kadhimi" ->
    "al-Kadhimi", "counter-terrorism" -> "Counter-Terrorism"."""
    parts = word.split("-")
    out = []
    for i, part in enumerate(parts):
        if i == 0 and len(parts) > 1 and part in {"al", "el"}:
            out.append(part)
        else:
            out.append(part[:1].upper() + part[1:])
    return "-".join(out)


# --------------------------------------------------------------------------- the table


class AliasEntry(BaseModel):
    """One entity of the alias table, as written in the YAML file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    label: str = Field(min_length=1)
    aliases: tuple[str, ...] = ()
    part_of: tuple[str, ...] = ()
    kind: str | None = None
    ruler: bool = True  # False: folded by canonical() but left out of the EntityRuler patterns

    @field_validator("aliases", "part_of", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return () if v is None else v

    @field_validator("label")
    @classmethod
    def _upper_label(cls, v: str) -> str:
        return v.strip().upper()


@dataclass(frozen=True, slots=True)
class _Candidate:
    canonical: str
    label: str
    order: int  # position of the entry in the table: the tie-breaker of last resort
    is_name: bool = False  # the canonical name itself (always wins its key)
    acronym: bool = False
    tokens: tuple[str, ...] = ()  # distinctive phonetic tokens, for skeleton matches


class AliasTable:
    """An immutable alias table. Build it with :meth:`load` or :meth:`from_entries`.

    Lookups are thread-safe (the only mutable state is the LRU cache of :meth:`canonical`, bounded
    by :data:`CANONICAL_CACHE_SIZE`).
    """

    __slots__ = (
        "_entries",
        "_by_name",
        "_exact",
        "_skeletons",
        "_surnames",
        "_ancestors",
        "_canonical_cached",
        "_frozen",
    )

    def __init__(self, entries: Iterable[AliasEntry]) -> None:
        entries = tuple(entries)
        by_name: dict[str, AliasEntry] = {}
        exact: dict[str, list[_Candidate]] = {}
        skeletons: dict[str, list[_Candidate]] = {}
        surnames: dict[str, list[_Candidate]] = {}
        name_keys: dict[str, str] = {}

        for e in entries:
            if fold_name(e.name) != e.name:
                raise ValueError(f"alias table: canonical name {e.name!r} is not in normal form ({fold_name(e.name)!r})")
            if e.name in by_name:
                raise ValueError(f"alias table: duplicate canonical name {e.name!r}")
            key = _key(e.name)
            if not key:
                raise ValueError(f"alias table: canonical name {e.name!r} has no letters or digits")
            if key in name_keys:
                raise ValueError(f"alias table: {e.name!r} and {name_keys[key]!r} fold to the same key")
            by_name[e.name] = e
            name_keys[key] = e.name

        for order, e in enumerate(entries):
            for surface in (e.name, *e.aliases):
                surface = fold_name(surface)
                key = _key(surface)
                if not key:
                    continue
                is_name = surface == e.name
                if not is_name and key in name_keys and name_keys[key] != e.name:
                    raise ValueError(
                        f"alias table: alias {surface!r} of {e.name!r} is the canonical name of {name_keys[key]!r}"
                    )
                acronym = _is_acronym(surface)
                tokens = tuple(_distinctive(surface))
                cand = _Candidate(e.name, e.label, order, is_name, acronym, tokens)
                exact.setdefault(key, []).append(cand)
                if not acronym and tokens:
                    skeletons.setdefault(" ".join(_consonants(t) for t in tokens), []).append(cand)
                if e.label == "PERSON" and len(tokens) >= 2:
                    # A bare surname ("Kadhimi", "al-Kadhimi") folds to the person when unambiguous.
                    surname = tokens[-1]
                    surnames.setdefault(_consonants(surname), []).append(
                        _Candidate(e.name, e.label, order, tokens=(surname,))
                    )

        ancestors: dict[str, frozenset[str]] = {}
        for e in entries:
            for parent in e.part_of:
                if parent not in by_name:
                    raise ValueError(f"alias table: {e.name!r} is part of unknown entity {parent!r}")
        for e in entries:
            ancestors[e.name] = _ancestors_of(e.name, by_name)

        self._entries = entries
        self._by_name = MappingProxyType(by_name)
        self._exact = MappingProxyType({k: tuple(v) for k, v in exact.items()})
        self._skeletons = MappingProxyType({k: tuple(v) for k, v in skeletons.items()})
        self._surnames = MappingProxyType({k: tuple(v) for k, v in surnames.items()})
        self._ancestors = MappingProxyType(ancestors)
        self._canonical_cached = lru_cache(maxsize=CANONICAL_CACHE_SIZE)(self._resolve)
        self._frozen = True

    def __setattr__(self, name: str, value: Any) -> None:
        if getattr(self, "_frozen", False):
            raise AttributeError("AliasTable is immutable")
        object.__setattr__(self, name, value)

    # ----------------------------------------------------------------- construction

    @classmethod
    def load(cls, path: Path) -> AliasTable:
        """Read a YAML alias table (a mapping with an ``entities`` list, see ``config/aliases.yaml``).
        Raises ``ValueError`` on an invalid table (unknown ``part_of``, a cycle, an alias that is
        another entity's canonical name, ...), with the offending name in the message."""
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(data, Mapping) or not isinstance(data.get("entities", []), list):
            raise ValueError(f"{path}: expected a mapping with an 'entities' list")
        return cls.from_entries(data.get("entities", []))

    @classmethod
    def from_entries(cls, entries: Iterable[AliasEntry | Mapping[str, Any]]) -> AliasTable:
        """Build a table from entries or plain mappings with the YAML fields (handy in tests)."""
        return cls(e if isinstance(e, AliasEntry) else AliasEntry.model_validate(e) for e in entries)

    # ----------------------------------------------------------------- queries

    @property
    def entries(self) -> tuple[AliasEntry, ...]:
        return self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, canonical: str) -> AliasEntry | None:
        """The entry whose canonical name is ``canonical``, or None."""
        return self._by_name.get(canonical)

    def canonical(self, name: str, label: str | None = None) -> str:
        """The entity key of a mention.

        * a listed name or alias (after case, punctuation, "the" and possessive folding) -> its
          canonical name; acronyms only when the mention is mostly capitals;
        * an unlisted spelling whose :func:`skeleton` equals a listed name's and whose distinctive
          tokens are each similar (>= :data:`TOKEN_SIMILARITY`) to the token in the same place ->
          that canonical name ("Kataib Hizballah" -> "Kataib Hezbollah"; "Hezbollah" stays itself);
        * a bare surname of exactly one listed PERSON ("Kadhimi", "al-Kadhimi") -> that person;
        * the same after dropping an honorific ("PM Kadhimi") or a generic tail ("... militia");
        * otherwise :func:`fold_name` of the mention, so unseen entities still get a stable key.

        ``label`` only breaks ties between entities that share an alias; it never filters (NER
        labels of transliterated names are unreliable). Never raises; idempotent:
        ``canonical(canonical(x)) == canonical(x)``. Cached (LRU, :data:`CANONICAL_CACHE_SIZE`).
        """
        return self._canonical_cached(name, label)

    def relation(self, a: str, b: str) -> Relation:
        """How entity ``a`` stands to entity ``b``: ``"same"``, ``"part_of"`` (a is part of b,
        transitively), ``"contains"`` (b is part of a) or ``"different"``. Both names go through
        :meth:`canonical` first, so aliases and free-text slot values can be passed as they are."""
        ca, cb = self.canonical(a), self.canonical(b)
        if _key(ca) == _key(cb):
            return "same"
        if cb in self._ancestors.get(ca, ()):
            return "part_of"
        if ca in self._ancestors.get(cb, ()):
            return "contains"
        return "different"

    def patterns(self) -> list[dict[str, str]]:
        """spaCy EntityRuler phrase patterns: every canonical name and alias of every entry with
        ``ruler: true`` (except one-word non-acronym names that are a word of another entity's name), as written plus capitalised, headline-case and upper-case variants (the
        ruler matches ORTH, case-sensitively, so "us" the pronoun is never matched). ``id`` is the
        canonical name, so a matched span's ``ent_id_`` is its canonical name."""
        # A one-word name (not an acronym) that is also a word of ANOTHER entity's longer name
        # ("Hizballah" in "Kataib Hizballah") is left to the NER: a ruler match runs first and would split an
        # unlisted spelling of the longer name in two. canonical() still folds it.
        inner_words: dict[str, set[str]] = {}
        for e in self._entries:
            for surface in (e.name, *e.aliases):
                tokens = _distinctive(surface)
                if len(tokens) > 1:
                    for t in tokens:
                        inner_words.setdefault(_consonants(t), set()).add(e.name)
        seen: set[tuple[str, str]] = set()
        out: list[dict[str, str]] = []
        for e in self._entries:
            if not e.ruler:
                continue
            for surface in (e.name, *e.aliases):
                surface = fold_name(surface)
                if not _key(surface):
                    continue
                tokens = _distinctive(surface)
                if (
                    len(tokens) == 1
                    and not _is_acronym(surface)  # "PMF" in "PMF security branch" is the same kind of thing
                    and inner_words.get(_consonants(tokens[0]), set()) - {e.name}
                ):
                    continue
                for variant in _case_variants(surface):
                    if (variant, e.name) in seen:
                        continue
                    seen.add((variant, e.name))
                    out.append({"label": e.label, "pattern": variant, "id": e.name})
        return out

    # ----------------------------------------------------------------- matching

    def _resolve(self, name: str, label: str | None) -> str:
        try:
            folded = fold_name(name)
        except Exception:  # pragma: no cover - fold_name is total on str; guard the contract anyway
            return name
        if not _key(folded):
            return folded
        for variant in _variants(folded):
            found = self._exact_match(variant, label) or self._skeleton_match(variant, label)
            if found is None:
                found = self._surname_match(variant, label)
            if found is not None:
                return found
        return folded

    def _exact_match(self, mention: str, label: str | None) -> str | None:
        cands = self._exact.get(_key(mention))
        if not cands:
            return None
        usable = [c for c in cands if not c.acronym or _looks_like_acronym_use(mention)]
        return _pick(usable, label)

    def _skeleton_match(self, mention: str, label: str | None) -> str | None:
        tokens = _distinctive(mention)
        if not tokens:
            return None
        skel = " ".join(_consonants(t) for t in tokens)
        cands = self._skeletons.get(skel)
        if not cands:
            return None
        short = len(skel.replace(" ", "")) < MIN_SKELETON_CONSONANTS
        usable = [c for c in cands if _tokens_agree(tokens, c.tokens, exact=short)]
        return _pick(usable, label)

    def _surname_match(self, mention: str, label: str | None) -> str | None:
        tokens = _distinctive(mention)
        if len(tokens) != 1 or len(_consonants(tokens[0])) < 3:
            return None
        cands = [c for c in self._surnames.get(_consonants(tokens[0]), ()) if _tokens_agree(tokens, c.tokens)]
        people = {c.canonical for c in cands}
        if len(people) != 1:  # "Hussein": Saddam or Fuad? an ambiguous surname never folds
            return None
        return cands[0].canonical


def _ancestors_of(name: str, by_name: Mapping[str, AliasEntry]) -> frozenset[str]:
    seen: set[str] = set()
    stack = list(by_name[name].part_of)
    while stack:
        parent = stack.pop()
        if parent == name:
            raise ValueError(f"alias table: part_of cycle through {name!r}")
        if parent in seen:
            continue
        seen.add(parent)
        stack.extend(by_name[parent].part_of)
    return frozenset(seen)


def _tokens_agree(a: list[str] | tuple[str, ...], b: tuple[str, ...], exact: bool = False) -> bool:
    """Token by token in the same place, never as sets: each distinctive token must have its own
    similar counterpart, so a shared "Hezbollah" does not make two names one."""
    if len(a) != len(b):
        return False
    if exact:
        return tuple(a) == b
    floor = SINGLE_TOKEN_SIMILARITY if len(a) == 1 else TOKEN_SIMILARITY
    return all(x == y or fuzz.ratio(x, y) >= floor for x, y in zip(a, b, strict=True))


def _pick(cands: list[_Candidate], label: str | None) -> str | None:
    if not cands:
        return None
    names = [c for c in cands if c.is_name]
    if names:
        return names[0].canonical
    if label is not None:
        same_label = [c for c in cands if c.label == label.upper()]
        if same_label:
            cands = same_label
    return min(cands, key=lambda c: c.order).canonical


def _variants(folded: str) -> list[str]:
    """The mention, then without an honorific prefix, then without a generic tail."""
    out = [folded]
    lower = folded.lower()
    for title in _HONORIFICS:
        if lower.startswith(title + " ") and len(folded) > len(title) + 1:
            out.append(folded[len(title) + 1 :].lstrip())
            break
    for v in list(out):
        words = v.split(" ")
        if len(words) > 1 and words[-1].lower() in _GENERIC_TAILS:
            out.append(" ".join(words[:-1]))
    return out


def _case_variants(surface: str) -> list[str]:
    """As written, first letter capitalised (sentence start), headline case, upper case."""
    variants = [surface]
    if any(c.islower() for c in surface):
        variants.append(surface[:1].upper() + surface[1:])
        small = {"of", "the", "and", "for", "in", "on", "to", "al", "el", "bin", "ibn"}
        words = surface.split(" ")
        variants.append(
            " ".join(w if (i > 0 and w.lower() in small) else _capitalise(w) for i, w in enumerate(words))
        )
        variants.append(surface.upper())
    return list(dict.fromkeys(variants))


__all__ = [
    "CANONICAL_CACHE_SIZE",
    "AliasEntry",
    "AliasTable",
    "Relation",
    "fold_name",
    "skeleton",
]
