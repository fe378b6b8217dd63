"""The worker's spaCy pipeline: the installed English model plus alias-aware entities.

``load_nlp`` returns the model with two additions:

* ``entity_ruler`` BEFORE ``ner``, fed with :meth:`AliasTable.patterns`: listed names and aliases
  get the table's label and their canonical name as ``ent_id_`` ("Kataib Hezbollah" is an ORG, not
  the PERSON the small model guesses); the statistical NER keeps those spans and labels the rest.
* ``attribute_ruler`` (same name, same position) is :class:`pipeline.attrs.FastAttributeRuler`
  (factory ``crosswire_attribute_ruler``) holding the model's own patterns: spaCy's AttributeRuler
  compiled into table lookups, token-for-token identical output at a fraction of the cost (it was
  ~12% of the pipeline's time). ``nlp.pipe_names`` is unchanged.
* ``crosswire_canonical`` AFTER ``ner``: drops obvious false entities (common nouns), gives the
  table's label to table entities the NER mislabelled, and sets ``Span._.canonical`` on every span
  of ``doc.ents`` (numbers included; :func:`extract_entities` leaves those out).

Processes one batch in-process (``nlp.pipe(n_process=1)``): the alias table is attached as an object
and is not meant to be pickled to subprocesses.

Nothing of the model is disabled: claim extraction reads POS tags (tagger, attribute_ruler),
dependencies and sentences (parser), lemmas (lemmatizer) and entities (ner).
"""

# No `from __future__ import annotations` here: spaCy 3.8.6 validates a factory's arguments
# against its annotations with pydantic, which cannot resolve postponed (string) ones.

import logging
import re
import sys
from collections.abc import Iterable

import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span, Token

from .aliases import AliasTable
from .attrs import swap_attribute_ruler
from .types import Entity

#: Labels that are numbers, not names: claim extraction reads them, entity keys skip them.
NUMERIC_LABELS = frozenset({"DATE", "TIME", "CARDINAL", "ORDINAL", "QUANTITY", "MONEY", "PERCENT"})

log = logging.getLogger("crosswire.nlp")
_PYTHON = sys.version_info[:2]

CANONICAL_PIPE = "crosswire_canonical"
RULER_PIPE = "entity_ruler"

if not Span.has_extension("canonical"):
    Span.set_extension("canonical", default=None)


class CanonicalNames:
    """Pipeline component: filters ``doc.ents``, sets ``Span._.canonical`` on each span, and gives
    spans whose canonical name is a table entity the table's label.

    The alias table is an object, which spaCy's config cannot carry, so it is attached after
    ``nlp.add_pipe`` (``load_nlp`` does it): ``nlp.get_pipe("crosswire_canonical").aliases = table``.
    Without a table, ``_.canonical`` is the span text (the component never fails a batch).

    Dropped (unless the EntityRuler matched the span, i.e. it has an ``ent_id_``), for name labels
    only:

    * spans with no capital letter at all ("the militia brigade", "control militia");
    * a single title-cased token that is a plural common noun by the lemmatizer's tables
      ("Militiamen", "Gunmen") at the start of a sentence or in a title-case headline, where the
      model takes capitalisation as a sign of a name. NORP is exempt ("Iraqis" is a plural name).
    """

    def __init__(self, nlp: Language, name: str = CANONICAL_PIPE) -> None:
        self.name = name
        self.aliases: AliasTable | None = None
        self._noun_index, self._noun_exc, self._noun_rules = _noun_tables(nlp)

    def __call__(self, doc: Doc) -> Doc:
        ents = doc.ents
        kept = [e for e in ents if not self._is_false_entity(e)]
        if len(kept) != len(ents):
            doc.ents = kept  # uncovered tokens become "O"
        aliases = self.aliases
        if aliases is None:
            for ent in doc.ents:
                ent._.canonical = ent.ent_id_ or ent.text
            return doc
        relabelled: list[Span] = []
        changed = False
        for ent in doc.ents:
            # The ruler already knows the canonical name of what it matched.
            canonical = ent.ent_id_ or aliases.canonical(ent.text, ent.label_)
            entry = aliases.get(canonical) if ent.label_ not in NUMERIC_LABELS else None
            if entry is not None and entry.label != ent.label_:
                # A table entity found by the NER under the wrong label ("Khataib Hizbollah" PERSON):
                # the table's label, so that every mention of one entity carries one label.
                ent = Span(doc, ent.start, ent.end, label=entry.label)
                changed = True
            relabelled.append(ent)
        if changed:
            doc.ents = relabelled
        for ent in doc.ents:
            ent._.canonical = ent.ent_id_ or aliases.canonical(ent.text, ent.label_)
        return doc

    def _is_false_entity(self, ent: Span) -> bool:
        if ent.ent_id_ or ent.label_ in NUMERIC_LABELS:
            return False
        if not any(c.isupper() for c in ent.text):
            return True
        if len(ent) == 1 and ent.label_ != "NORP":
            tok = ent[0]
            if tok.is_title and (tok.is_sent_start or _in_headline(tok)) and self._is_plural_noun(tok.lower_):
                return True
        return False

    def _is_plural_noun(self, word: str) -> bool:
        """Whether ``word`` is the plural of a dictionary noun ("militiamen" -> "militiaman")."""
        if not self._noun_index:
            return False
        exc = self._noun_exc.get(word)
        if exc and exc[0] != word:
            return True
        for old, new in self._noun_rules:
            if word.endswith(old) and len(word) > len(old):
                lemma = word[: len(word) - len(old)] + new
                if lemma != word and lemma in self._noun_index:
                    return True
        return False


def _noun_tables(nlp: Language) -> tuple[frozenset[str], dict[str, list[str]], list[tuple[str, str]]]:
    """The English rule lemmatizer's noun index, exceptions and suffix rules, or empty tables."""
    if "lemmatizer" not in nlp.pipe_names:
        return frozenset(), {}, []
    lookups = getattr(nlp.get_pipe("lemmatizer"), "lookups", None)
    if lookups is None or not all(lookups.has_table(t) for t in ("lemma_index", "lemma_exc", "lemma_rules")):
        return frozenset(), {}, []
    index = frozenset(lookups.get_table("lemma_index").get("noun", ()))
    exc = dict(lookups.get_table("lemma_exc").get("noun", {}))
    rules = [(old, new) for old, new in lookups.get_table("lemma_rules").get("noun", ())]
    return index, exc, rules


#: A line longer than this many tokens is a paragraph, not a headline.
HEADLINE_MAX_TOKENS = 64


def _in_headline(tok: Token) -> bool:
    """Whether ``tok`` is on a title-case line (a headline): most content words capitalised. The
    line, not the sentence: the parser often runs a headline into the first paragraph. The scan
    stops at ``HEADLINE_MAX_TOKENS`` either side (a text with no line breaks would otherwise be
    scanned whole for each entity: quadratic, minutes for a long one)."""
    doc = tok.doc
    start = tok.i
    lo, hi = max(0, tok.i - HEADLINE_MAX_TOKENS), min(len(doc), tok.i + 1 + HEADLINE_MAX_TOKENS)
    while start > lo and "\n" not in doc[start - 1].text and "\n" not in doc[start - 1].whitespace_:
        start -= 1
    end = tok.i + 1
    while end < hi and "\n" not in doc[end - 1].whitespace_ and "\n" not in doc[end].text:
        end += 1
    if end - start > HEADLINE_MAX_TOKENS:
        return False  # a paragraph (also when no line break was within reach: the line is longer)
    words = [t for t in doc[start:end] if t.is_alpha and not t.is_stop]
    return len(words) >= 3 and sum(t.is_title or t.is_upper for t in words) >= 0.75 * len(words)


@Language.factory(CANONICAL_PIPE)
def make_canonical_names(nlp: Language, name: str) -> CanonicalNames:
    return CanonicalNames(nlp, name)


def slow_spacy_build(version: str, python: tuple[int, int]) -> str | None:
    """Why the spaCy ``version`` running on ``python`` (major, minor) is a known slow build, or
    ``None``. spaCy compiles with Cython's ``profile`` directive below Python 3.12, and its wheels
    from 3.8.7 on take and drop the GIL inside the parser's ``nogil`` code (1.3 million locks per
    article with 3.8.18 against 3,900 with 3.8.6, which Crosswire pins; the README's Performance
    section has the measurements). Judged by version alone: later series are not known."""
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", version)
    if m is None or python >= (3, 12) or not (3, 8, 7) <= tuple(map(int, m.groups())) < (3, 9, 0):
        return None
    return (
        f"spaCy {version} on Python {python[0]}.{python[1]} takes the GIL inside the parser's nogil code, "
        "about 1.6x slower than spaCy 3.8.6 (the version Crosswire pins), and slower still in a worker; "
        "install spacy==3.8.6"
    )


def load_nlp(model: str, aliases: AliasTable) -> Language:
    """Load the installed spaCy package ``model``, swap its ``attribute_ruler`` for the exact
    compiled one, and add the alias EntityRuler (before ``ner``) and the ``crosswire_canonical``
    component (after ``ner``). Loads from disk every call: the caller keeps one per process.
    Raises ``OSError`` when the package is not installed. Logs a warning when the installed spaCy
    is a known slow build (:func:`slow_spacy_build`)."""
    slow = slow_spacy_build(spacy.__version__, _PYTHON)
    if slow:
        log.warning(slow)
    nlp = spacy.load(model)
    swap_attribute_ruler(nlp)  # a no-op for models without an AttributeRuler
    ner_position = {"before": "ner"} if "ner" in nlp.pipe_names else {}
    # Before the NER, ruler spans are fixed constraints the NER labels around; overwrite_ents only
    # matters if something upstream set entities, and then the table should win.
    ruler = nlp.add_pipe(RULER_PIPE, config={"overwrite_ents": True, "phrase_matcher_attr": "ORTH"}, **ner_position)
    # EntityRuler.add_patterns runs every upstream component (tagger, parser, ...) over each phrase
    # pattern; patterns only need the tokenizer, and that alone cuts ~0.5 s off the load.
    with nlp.select_pipes(disable=nlp.pipe_names):
        ruler.add_patterns(aliases.patterns())  # type: ignore[attr-defined]
    canonical = nlp.add_pipe(CANONICAL_PIPE, last=True)
    canonical.aliases = aliases  # type: ignore[attr-defined]
    return nlp


def extract_entities(doc: Doc) -> tuple[Entity, ...]:
    """The named entities of ``doc`` in text order, numbers (DATE, CARDINAL, ...) left out.
    ``canonical`` is ``Span._.canonical`` when the pipeline set it, else the span text."""
    out: list[Entity] = []
    for ent in doc.ents:
        if ent.label_ in NUMERIC_LABELS:
            continue
        canonical = ent._.canonical if Span.has_extension("canonical") else None
        out.append(
            Entity(
                text=ent.text,
                label=ent.label_,
                canonical=canonical if isinstance(canonical, str) and canonical else ent.text,
                start=ent.start_char,
                end=ent.end_char,
            )
        )
    return tuple(out)


def entity_keys(ents: Iterable[Entity]) -> list[str]:
    """The canonical keys of ``ents`` in order, repeats kept (counts matter for TF-IDF)."""
    return [e.canonical for e in ents]


__all__ = [
    "CANONICAL_PIPE",
    "NUMERIC_LABELS",
    "CanonicalNames",
    "entity_keys",
    "extract_entities",
    "load_nlp",
]
