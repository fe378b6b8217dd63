"""Claim extraction: counts with hedges, who said them, denials and custody slots.

``extract_claims(doc, article_id, outlet) -> tuple[Claim, ...]`` reads one spaCy parse of an
article's normalised text (title + "\\n\\n" + body) and returns the factual claims it makes, in text
order. Pure function of the parse: no I/O after the lexicon (``config/claims.yaml``) is loaded once;
claims never refer to another article. Precision over recall: when a number cannot be tied to a
lexicon predicate and a counted noun of a known theme class, nothing is emitted.

Output contract (``pipeline.types.Claim``), field by field
----------------------------------------------------------
``predicate``
    One of ``detained, killed, injured, missing, released, custody, nationality, attacks, troops,
    count``. From the lexicon (``predicates`` in claims.yaml), for the counted noun as the PATIENT:
    the object of an active verb or the subject of a passive one ("police arrested 12 men",
    "19 men had been detained"), a participle/relative clause on the noun ("the 14 men detained",
    "the three detained leaders", "members who were detained"), the subject of an intransitive
    ("12 died") or of a predicate adjective ("12 are missing", "20 were among the dead"; "missing"
    counts whatever its tag), the "of" object of a predicate noun ("the arrest of 12"), "the death
    toll rose to / stood at N" or "the number of injured/dead/detainees/people missing rose to N",
    or a headline-style passive without its auxiliary ("... and 12 arrested"). A number's own
    participle beats the verb it hangs on. Conjoined counts of one class add up ("two women and
    a man died": [3, 3], emitted once). "hold 300 crew members to ransom" is not detention.
    The agent of a lexicon verb ("five gunmen killed 12 villagers": 5) is never a count.
    ``attacks`` comes from the counted noun (class ``attacks``) whatever the verb; ``troops`` from
    class ``troops`` with a troop-level verb ("there were 5,200 troops", "has 2,500 troops").
    ``count`` is a number on a known theme class governed by some other verb; see ``event`` for
    how to keep those apart. Crowd sizes are one ``count`` frame whatever the wording: a person
    noun or bare number as the subject of a crowd verb ("40,000 people marched / took part / took
    to the streets / gathered"), "estimated/put the crowd at N", "the turnout was N", "a crowd of
    N" -> theme ``people``, event ``count:crowd``; "another 20,000 marched" is another crowd and
    is not emitted. Lists in ``crowd`` of claims.yaml.
``theme``
    The theme CLASS (table ``theme_classes`` in claims.yaml), not the word: ``people`` (members,
    men, fighters, militiamen, people, detainees, suspects, militants, prisoners, gunmen ...),
    ``commanders`` (commanders, leaders: a distinct subgroup of people), ``troops``, ``attacks``, and
    specific groups that are their own quantity: ``protesters``, ``civilians``, ``police``,
    ``students``, ``children``, ``journalists``, ... A bare number with a people predicate
    ("40 were injured") is ``people``. Counted nouns outside the table are not emitted.
    For ``nationality`` the theme is ``people:<demonym>``, e.g. ``people:iranian`` = how many of the
    people of the current frame (the last asserted people-predicate count before it, usually the
    detainees) are Iranian. Compare claims only with equal ``(predicate, theme, event)``.
``event``
    ``"main"`` by default. When the clause of the claim carries its own time or place anchor, the
    event is ``"<predicate>@<anchor>"``, anchor lower-cased without a leading the/in/since:
    a DATE entity attached to the same clause (or inside the counted/predicate noun phrase) that
    is not main-event talk (weekdays, today, overnight, night, "June 26"-style day dates are
    main). A DATE anchors only when it reads as a time (a digit, a month or weekday, a number
    word or a time word such as last/past/week/year): the model tags some places as DATE. "The
    same clause" includes coordinated verbs and participle adjuncts ("killed six, injured 50 ...
    in September"; "struck in September, killing seven"), a date opening the sentence ("In early
    March, ..."), a clause attached to a date ("since 2007, when a quake killed 500") or placed by
    a distance in time ("two years after ... a quake that killed ..."); a clause whose subject is
    it/this/that takes the one past date of the previous sentence ("The last quake was in
    February, when ... It killed 612"). E.g. ``"detained@may"``, ``"troops@last year"``, ``"attacks@october"``,
    ``"attacks@past two weeks"``, ``"killed@march"``; or a GPE in "in <GPE>" on the predicate or
    counted noun that is not among the GPEs of the first three sentences (``"detained@basra"``).
    The nearest anchor wins; a nearer main-time DATE makes it ``"main"``. A lone number the
    model tags as DATE ("has risen to 58") anchors nothing.
    **Place scope.** A claim that would be ``"main"`` gets ``"<predicate>@<scope>"`` when its
    clause scopes the count to a wider or another place (``scope`` in claims.yaml):
    "nationwide", "across/throughout the country" -> ``nationwide``; "worldwide", "around the
    world" -> ``worldwide``; "across the continent" -> ``continent``; "across Europe" ->
    ``across europe``; "in 20 cities" -> ``20 cities``, "in cities" -> ``cities``; "in <LOC or
    GPE>" on the clause's subject or agent that is not a main place ("killed by a quake in
    eastern China" -> ``killed@china``). The scope must hang on the predicate, counted noun,
    number or clause verb (subject and agent included), crossing no other clause and no other
    count ("arrested 12 in Lyon and more than 200 nationwide": only 200); an adjective
    ("nationwide strike") scopes only its own noun; custody claims take no scope. No explicit
    place: ``"main"``, comparable with the main event.
    Copula-inherited claims ("it was 19") and nationality claims take the event of their frame.
    Custody claims use predicate ``custody`` in the key (``"main"`` or ``"custody@<anchor>"``).
    ``count`` claims use ``"count:<verb lemma>"`` or ``"count:<verb lemma>@<anchor>"``: generic
    counts only share an event when the same verb governs them.
``kind``
    ``"count"`` (``value`` set, ``slot`` None) or ``"slot"`` (``slot`` set, ``value`` None).
``value``
    ``pipeline.types.Interval`` from ``pipeline.numbers.parse_quantity`` on the number phrase
    ("at least 20" -> [20, inf), "more than a dozen" -> [13, inf), "14" -> [14, 14]).
    Subgroups add up: a count whose noun has ``amod`` "other" ("at least 20 other fighters") is
    added to the most recent earlier asserted subgroup count (class ``commanders``) of the same
    predicate and event in the same article -- same sentence or earlier -- giving a ``people``
    claim [23, inf); the ``commanders`` claim [3, 3] is kept. With no earlier subgroup the value
    becomes [N, inf). No separate [20, inf) claim is emitted for the "other" group.
    "no X" ("no commander was detained", "there were no Iranians") is ``value=[0, 0]`` with
    ``polarity="asserted"`` (an asserted zero, comparable numerically).
    "one of them was Iranian" -> [1, inf) (hedge "at least").
    "A PMF official said it was 19" (attr of a copula whose subject is it/that/the number/figure,
    under a say-verb) -> the predicate/theme/event of the article's current frame, value 19.
    Ages ("23 years old", "aged 23"), ordinals, dates, money and percentages are never values;
    nor clock times and numeric dates ("9: 00", "04 / 02 / 07"), zero-padded digit groups, the
    generic pronoun "one" ("when one is killed"), or anything in a sentence that is a URL, path
    or slug. A lone number the model tags as DATE ("The official figure is 14") is a number;
    "20, 000" (tokenised thousands) is one number.
``slot``
    Only for ``predicate == "custody"`` (theme ``people``): who holds the detainees, from
    "transferred/sent/moved/handed over/turned over to X", "in the custody of X", "in X's custody";
    the patient must be people (detainees, militiamen, them, those detained ...). X is the entity's
    ``span._.canonical`` when X is an entity, else X's noun phrase without determiner; an "of"
    complement is kept, with a following appositive entity preferred:
    "to the security branch of Iraq's umbrella grouping, the Popular Mobilization Forces (PMF)"
    -> "security branch of <canonical of Popular Mobilization Forces>";
    "still in the custody of other security services" -> "other security services";
    "handed over to the U.S. military" -> "U.S. military".
``polarity``
    ``"denied"`` for (a) a deny-verb (deny, reject, dismiss, refute, rebut) whose object is a
    pronoun "this/that/it" or a custody noun ("denied any (such) transfer"): the claim copies
    predicate/theme/event/value/slot of the most recent earlier claim of the SAME article (for a
    custody noun: the most recent custody claim) and sets ``denies`` to its id; an unresolved
    custody denial has slot "unspecified" and ``denies=None``; an unresolved pronoun denial is not
    emitted. "denied responsibility" is not a denial of a claim. (b) a count whose predicate verb
    has a ``neg`` child ("police did not arrest 14 people": [14, 14] denied).
    Everything else is ``"asserted"``.
``modality``
    ``"doubted"`` when the claim's clause is the complement of doubt/question/dispute ("he doubted
    that ..."); ``"reported"`` when the say-verb has advmod initially/earlier/originally/first/
    previously, or the predicate has reportedly/allegedly; ``"hedged"`` for may/might/could or
    possibly/probably/perhaps/likely on the predicate; else ``"asserted"``.
    A doubted hand-over with no destination ("doubted that Iraqi authorities had handed over the
    detainees") is a custody claim with modality ``doubted``, the slot of the most recent
    custody claim in the same article, and ``denies`` = that claim's id.
``source`` / ``source_kind``
    The nsubj subtree (without relative clauses/appositions) of the nearest ancestor say-verb
    (config ``say_verbs``: say, tell, report, announce, claim, confirm, deny, add, state, insist,
    accuse, ...; "saying"/"and said" take the subject of the verb they hang on), or the object of
    "according to", or -- when the parser lost the subject of a sentence-final say-verb -- the short
    phrase between the last comma and the verb if it names a person noun ("..., government
    officials and paramilitary sources said."). Lightly normalised: whitespace collapsed, first
    letter lower-cased unless a proper noun ("a PMF official", "two Iraqi government officials",
    "the military", "Iraqi authorities"). ``source_kind="attributed"``. "he"/"she"/"they" is
    resolved to the latest earlier attributed source of the article whose head is a person noun
    (official, source, spokesman ...) or a person's name, of the same number, or (he/she) a PERSON
    entity who spoke earlier (subject of a say-verb, or apposed to such a subject: "a police
    spokesman, Colonel X, said"), whichever is nearest before the pronoun; else kept as written.
    A relative pronoun subject ("the health ministry in Lima, which said 85") is replaced by its
    antecedent noun phrase; a dateline folded into the subject ("AYACUCHO, Peru - Police said")
    is cut off at the dash.
    With no say-verb: the ``outlet`` argument (or ``"the outlet"``), ``source_kind="outlet"``.
    Numbers inside a source phrase ("two officials said") are never claims.
``denies``
    See ``polarity`` and ``modality``; never points to another article.
``revision``
    True when the claim states its figure as a count revised upward: a rising toll verb ("the
    death toll rose / has risen / climbed / jumped to N", "deaths rose to N", "the number of dead
    has risen to N", "the toll now stands at N", "topped N" -> [N+1, inf)), the toll as the object
    of a raising verb ("raising / bringing the death toll to N"), or "N, up from M" on the count's
    clause. A forecast ("could rise to 50", "is expected to climb to 80") is no claim at all.
    ``pipeline.contradict`` reads a lower figure of the same quantity as superseded (rule 6a).
    Claims in the clean blank-line segments of a sentence the parser glued to URL debris are
    kept (quoted by their segment); the debris segments' entities anchor nothing.
``id``
    ``stable_id(article_id, str(start), predicate, theme, str(value) or slot)``: deterministic on
    replay; duplicates (same id) within an article are dropped.
``start`` / ``end`` / ``sentence``
    Character offsets in ``doc.text`` of the sentence (cut at blank lines, because the parser
    often runs the headline into the first paragraph), and ``sentence == doc.text[start:end]``.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml
from spacy.tokens import Doc, Span, Token

from pipeline.numbers import add, parse_quantity
from pipeline.settings import CONFIG_DIR
from pipeline.tokentable import token_table
from pipeline.types import Claim, Interval, stable_id

__all__ = ["Lexicon", "extract_claims", "load_lexicon"]

_NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety "
    "hundred thousand million billion dozen dozens hundreds thousands millions scores several".split()
)
_HEDGE_WORDS = frozenset(
    "more than over at least fewer less under most up to as many nearly almost close about around "
    "some roughly approximately an estimated a no just upwards of in excess exactly".split()
)
_NOT_COUNT_ENTS = frozenset({"DATE", "TIME", "MONEY", "PERCENT", "ORDINAL", "QUANTITY"})
_SUBJ = ("nsubj", "nsubjpass")
_PRONOUNS = frozenset({"he", "she", "they", "it", "we", "i"})
_PARTITIVE_PRONOUNS = frozenset({"them", "those", "these", "they"})


@dataclass(frozen=True)
class Lexicon:
    """The word lists of config/claims.yaml, as lookup tables."""

    band: float
    verbs: dict[str, str]
    intransitive: dict[str, str]
    phrasal: dict[str, str]
    adjectives: dict[str, str]
    nouns: dict[str, str]
    implied_by_noun: dict[str, str]
    toll_nouns: dict[str, str]
    toll_verbs: frozenset[str]
    theme_class: dict[str, str]
    subgroups: dict[str, str]
    human_predicates: frozenset[str]
    custody_verbs: frozenset[str]
    custody_nouns: frozenset[str]
    say_verbs: frozenset[str]
    deny_verbs: frozenset[str]
    doubt_verbs: frozenset[str]
    generic_objects: frozenset[str]
    generic_determiners: frozenset[str]
    reported_adverbs: frozenset[str]
    hedge_auxiliaries: frozenset[str]
    hedge_adverbs: frozenset[str]
    person_nouns: frozenset[str]
    copula_subjects: frozenset[str]
    main_time_words: frozenset[str]
    troop_verbs: frozenset[str]
    person_groups: frozenset[str] = frozenset()
    crowd_verbs: frozenset[str] = frozenset()
    crowd_phrasal: frozenset[str] = frozenset()
    crowd_nouns: frozenset[str] = frozenset()
    crowd_estimate_verbs: frozenset[str] = frozenset()
    crowd_people: frozenset[str] = frozenset()
    toll_rising: frozenset[str] = frozenset()
    toll_exceeding: frozenset[str] = frozenset()
    toll_raising: frozenset[str] = frozenset()
    toll_risers: frozenset[str] = frozenset()
    scope_adverbs: dict[str, str] = field(default_factory=dict)
    scope_nouns: dict[str, str] = field(default_factory=dict)
    scope_places: frozenset[str] = frozenset()

    @classmethod
    def from_mapping(cls, raw: dict) -> Lexicon:
        p = raw["predicates"]
        classes = {w: cls_name for cls_name, words in raw["theme_classes"].items() for w in words}
        fz = frozenset
        crowd = raw.get("crowd") or {}
        toll = p["toll"]
        scope = raw.get("scope") or {}
        return cls(
            band=float(raw.get("band", 0.2)),
            verbs=dict(p["verbs"]),
            intransitive=dict(p["intransitive"]),
            phrasal=dict(p["phrasal"]),
            adjectives=dict(p["adjectives"]),
            nouns=dict(p["nouns"]),
            implied_by_noun=dict(p["implied_by_noun"]),
            toll_nouns=dict(p["toll"]["nouns"]),
            toll_verbs=fz(p["toll"]["verbs"]),
            theme_class=classes,
            subgroups=dict(raw["subgroups"]),
            human_predicates=fz(raw["human_predicates"]),
            custody_verbs=fz(raw["custody"]["verbs"]),
            custody_nouns=fz(raw["custody"]["nouns"]),
            say_verbs=fz(raw["say_verbs"]),
            deny_verbs=fz(raw["deny_verbs"]),
            doubt_verbs=fz(raw["doubt_verbs"]),
            generic_objects=fz(raw["generic_objects"]),
            generic_determiners=fz(raw["generic_determiners"]),
            reported_adverbs=fz(raw["reported_adverbs"]),
            hedge_auxiliaries=fz(raw["hedge_auxiliaries"]),
            hedge_adverbs=fz(raw["hedge_adverbs"]),
            person_nouns=fz(raw["person_nouns"]),
            copula_subjects=fz(raw["copula_subjects"]),
            main_time_words=fz(raw["main_time_words"]),
            troop_verbs=fz(raw["troop_verbs"]),
            person_groups=fz(raw.get("person_groups", ())),
            crowd_verbs=fz(crowd.get("verbs", ())),
            crowd_phrasal=fz(crowd.get("phrasal", ())),
            crowd_nouns=fz(crowd.get("nouns", ())),
            crowd_estimate_verbs=fz(crowd.get("estimate_verbs", ())),
            crowd_people=fz(crowd.get("people", ())),
            toll_rising=fz(toll.get("rising", ())),
            toll_exceeding=fz(toll.get("exceeding", ())),
            toll_raising=fz(toll.get("raising", ())),
            toll_risers=fz(toll.get("risers", ())),
            scope_adverbs=dict(scope.get("adverbs") or {}),
            scope_nouns=dict(scope.get("nouns") or {}),
            scope_places=fz(scope.get("places", ())),
        )


@lru_cache(maxsize=4)
def load_lexicon(path: Path = CONFIG_DIR / "claims.yaml") -> Lexicon:
    """Read the lexicon once per path (yaml.safe_load)."""
    with open(path, encoding="utf-8") as f:
        return Lexicon.from_mapping(yaml.safe_load(f))


# --------------------------------------------------------------------------- small helpers


def _lemma(t: Token) -> str:
    return t.lemma_.lower()


def _canonical(span: Span) -> str:
    """The alias-folded name when the NLP pipeline set one, else the text without a leading 'the'."""
    if Span.has_extension("canonical"):
        value = getattr(span._, "canonical", None)
        if value:
            return str(value)
    text = span.text
    return re.sub(r"^(?:the)\s+", "", text, flags=re.I).strip()


def _ancestors_until_sentence(t: Token) -> Iterator[Token]:
    while t.head != t:
        t = t.head
        yield t


def _is_verbish(t: Token) -> bool:
    return t.pos_ in ("VERB", "AUX")


def _clean_phrase(tokens: Iterable[Token]) -> str:
    toks = sorted(tokens, key=lambda x: x.i)
    while toks and (toks[0].is_punct or toks[0].dep_ in ("cc", "mark", "case")):
        toks = toks[1:]
    while toks and (toks[-1].is_punct or toks[-1].dep_ == "cc"):
        toks = toks[:-1]
    text = "".join(t.text_with_ws for t in toks).strip()
    text = re.sub(r"\s+", " ", text)
    if toks and text and toks[0].pos_ != "PROPN" and not toks[0].ent_type_ in ("NORP", "GPE", "ORG", "PERSON"):
        text = text[0].lower() + text[1:]  # "The military" -> "the military", keep "Iraqi authorities"
    return text


@dataclass
class _State:
    """What one pass over an article has seen so far (claims in text order, sources, frame)."""

    article_id: str
    outlet: str
    lex: Lexicon
    main_gpes: frozenset[str]
    text: str = ""  # doc.text, computed once (Doc.text joins every token on each access)
    ents: tuple[Span, ...] = ()  # doc.ents, computed once (each access builds new spans)
    ent_starts: list[int] = field(default_factory=list)  # the token start of each of ``ents``
    claims: list[Claim] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    sources: list[tuple[str, Token]] = field(default_factory=list)  # (text, head noun)
    prev_anchor: str | None = None  # the one past-time anchor of the previous sentence, if any
    scopes: dict[int, list[tuple[Token, str, int]]] = field(default_factory=dict)  # per sentence start
    debris: list[tuple[int, int]] = field(default_factory=list)  # char spans of URL debris segments
    # Per token of the doc, read once (:func:`pipeline.tokentable.token_table`): the sentence loops test these plain
    # strings and build a spaCy Token only where one can matter (a Token per test was most of the cost).
    lowers: list[str] = field(default_factory=list)
    lemmas: list[str] = field(default_factory=list)  # lowercased, as :func:`_lemma`
    like_num: list[bool] = field(default_factory=list)

    def frame(self) -> Claim | None:
        for c in reversed(self.claims):
            if c.kind == "count" and c.polarity == "asserted" and c.predicate in self.lex.human_predicates:
                return c
        return None

    def ent_at(self, i: int) -> Span | None:
        """The entity that holds token ``i``, if any (entities are sorted and do not overlap)."""
        k = bisect_right(self.ent_starts, i) - 1
        return self.ents[k] if k >= 0 and i < self.ents[k].end else None

    def sent_ents(self, sent: Span) -> list[Span]:
        # entities are sorted and do not overlap: a binary search, not a scan of the whole
        # article per sentence (quadratic: seconds for a long report)
        out = []
        for i in range(bisect_left(self.ent_starts, sent.start), len(self.ents)):
            e = self.ents[i]
            if e.start >= sent.end:
                break
            if e.end <= sent.end:
                out.append(e)
        if self.debris:
            out = [e for e in out if not any(a <= e.start_char < b for a, b in self.debris)]
        return out

    def emit(self, c: Claim) -> None:
        if c.id not in self.ids:
            self.ids.add(c.id)
            self.claims.append(c)


# --------------------------------------------------------------------------- public entry point


def extract_claims(
    doc: Doc, article_id: str, outlet: str | None = None, *, lexicon: Lexicon | None = None, text: str | None = None
) -> tuple[Claim, ...]:
    """The claims made in one parsed article, in text order (see the module docstring). ``text``:
    the string that was parsed (``doc.text``, which spaCy rebuilds from every token on each read)."""
    lex = lexicon or load_lexicon()
    table = token_table(doc)
    sents = table.sentences(doc)
    ents = tuple(doc.ents)
    st = _State(
        article_id=article_id,
        outlet=outlet or "the outlet",
        lex=lex,
        main_gpes=_main_gpes(sents, ents),
        text=doc.text if text is None else text,
        ents=ents,
        ent_starts=[e.start for e in ents],
        lowers=table.lower,
        lemmas=table.lemma,
        like_num=table.like_num,
    )
    for sent in sents:
        _sentence(sent, st)
    return tuple(st.claims)


def _main_gpes(sents: list[Span], ents: tuple[Span, ...], first_sentences: int = 3) -> frozenset[str]:
    """GPEs named in the title and lead: the main event's places (the entities that lie within
    one of the first sentences, as ``sent.ents``, which reads every token of the doc per call)."""
    out: set[str] = set()
    for sent in sents[:first_sentences]:
        out.update(
            _canonical(e).lower() for e in ents if sent.start <= e.start and e.end <= sent.end and e.label_ in ("GPE", "LOC")
        )
    return frozenset(out)


# --------------------------------------------------------------------------- one sentence


@dataclass
class _Say:
    """The attribution of a clause: who said it and how."""

    source: str
    kind: str  # "attributed" | "outlet"
    modality: str
    verb: Token | None


# A URL, a path or a slug ("com / troy - michigan - office - shooting - 1 - dead - 2 - injured")
_URL_DEBRIS = re.compile(
    r"https?\s*:|www\s*\.|(?:^|\.)\s*(?:com|org|net|html?)\b|\S\s/\s\S.*\s/\s|(?:\b[\w']+\s-\s){4,}"
)


def _sentence(sent: Span, st: _State) -> None:
    if _URL_DEBRIS.search(st.text[sent.start_char : sent.end_char]):  # sent.text, without a Token per word
        st.prev_anchor = None
        if "\n\n" in sent.text:
            _clean_segments_only(sent, st)
        return  # a URL or path ("com / troy - office - shooting - 1 - dead - 2 - injured"): no claims
    _sentence_claims(sent, st)
    st.prev_anchor = _sentence_anchor(sent, st)


def _clean_segments_only(sent: Span, st: _State) -> None:
    """'html\\n\\nQuake toll rises to 10\\n\\nThe toll rose to 10 on Monday.': the parser runs the tail
    of a URL, the headline and the first paragraph into one sentence. Claims are quoted by their
    blank-line segment (:func:`_segment`), so keep those whose own segment is not debris."""
    n = len(st.claims)
    start = sent.start_char
    for part in re.split(r"(\n\n+)", st.text[sent.start_char : sent.end_char]):
        if _URL_DEBRIS.search(part):
            st.debris.append((start, start + len(part)))  # its dates and places anchor nothing
        start += len(part)
    _sentence_claims(sent, st)
    added = st.claims[n:]
    del st.claims[n:]
    for c in added:
        if _URL_DEBRIS.search(c.sentence):
            st.ids.discard(c.id)
        else:
            st.claims.append(c)


def _sentence_anchor(sent: Span, st: _State) -> str | None:
    """The sentence's own past time when it has exactly one and no main-time DATE: 'The last
    major quake was in February, when ...' lets the next sentence's 'It killed 612' be about
    February."""
    labels: set[str | None] = set()
    for ent in st.sent_ents(sent):
        if ent.label_ == "DATE" and _date_like(ent, st.lex):
            labels.add(_date_anchor(ent, st.lex))
    return next(iter(labels)) if len(labels) == 1 else None


def _sentence_claims(sent: Span, st: _State) -> None:
    excluded = _source_tokens(sent, st)
    _denials(sent, st)  # first: a denial refers back to claims of earlier sentences only
    events: list[tuple[int, int, object]] = []
    for toks, root in _number_phrases(sent, st.sent_ents(sent), st):
        if any(t.i in excluded for t in toks):
            continue  # "two officials said": the number belongs to the source
        events.append((toks[0].i, 0, (toks, root)))
    doc = sent.doc
    # words with a "no" determiner ("no casualties"), once each, as their children name them
    nouns = {doc[i].head.i for i in range(sent.start, sent.end) if st.lowers[i] == "no" and doc[i].dep_ == "det"}
    for i in sorted(nouns):
        if sent.start <= i < sent.end:
            events.append((i, 1, doc[i]))
    for _, kind, item in sorted(events, key=lambda e: (e[0], e[1])):
        if kind == 0:
            toks, root = item  # type: ignore[misc]
            _count_from_number(sent, toks, root, st)
        else:
            _zero_count(sent, item, st)  # type: ignore[arg-type]
    _custody(sent, st)


def _source_tokens(sent: Span, st: _State) -> set[int]:
    lex = st.lex
    out: set[int] = set()
    doc = sent.doc
    for i in range(sent.start, sent.end):
        lem = st.lemmas[i]
        if lem not in lex.say_verbs and lem not in lex.doubt_verbs and st.lowers[i] != "according":
            continue
        t = doc[i]
        if lem in lex.say_verbs or (
            lem in lex.doubt_verbs and any(c.dep_ == "ccomp" for c in t.children)
        ):
            subj = [c for c in t.children if c.dep_ == "nsubj"]
            for c in subj:
                fold = _folded(c, lex)
                out.update(x.i for x in c.subtree if fold is None or x.i >= fold.i)
            if not subj and (trailing := _trailing_source(t, lex)) is not None:
                out.update(range(trailing[1].i - 10, t.i))  # the phrase lies just before the verb
        if t.lower_ == "according":
            for c in t.children:
                if c.lower_ == "to":
                    out.update(x.i for x in c.subtree)
    return out


# --------------------------------------------------------------------------- number phrases


_AFTER = frozenset({"dozen", "hundred", "thousand", "million", "billion", "dozens", "hundreds", "thousands"})


def _number_phrases(sent: Span, ents: list[Span], st: _State) -> list[tuple[list[Token], Token]]:
    """Number phrases of a sentence as token lists with their syntactic root."""
    doc = sent.doc
    lowers, like_num = st.lowers, st.like_num
    used: set[int] = set()
    out: list[tuple[list[Token], Token]] = []

    def root_of(toks: list[Token]) -> Token:
        ids = {t.i for t in toks}
        roots = [t for t in toks if t.head.i not in ids or t.head == t]
        return roots[-1] if roots else toks[-1]

    for ent in ents:
        if ent.label_ == "CARDINAL":
            toks = _extend_left(list(ent))
            used.update(t.i for t in toks)
            out.append((toks, root_of(toks)))
    for i in range(sent.start, sent.end):
        low = lowers[i]
        is_num = like_num[i] or low in _NUMBER_WORDS or (
            low in ("few", "handful", "couple") and i > 0 and lowers[i - 1] == "a"
        )
        if not is_num or i in used:
            continue
        t = doc[i]
        if t.ent_type_ in _NOT_COUNT_ENTS and not _mistagged_number(t, st.ent_at(i)):
            continue
        toks = [t]
        j = t.i + 1
        while j < sent.end and doc[j].lower_ in _AFTER | {"of"} and doc[j].ent_type_ not in _NOT_COUNT_ENTS:
            if doc[j].lower_ == "of" and not (j + 1 < sent.end and doc[j + 1].lower_ in _AFTER):
                break
            toks.append(doc[j])
            j += 1
        if low in ("few", "handful", "couple"):
            toks.insert(0, doc[t.i - 1])
        toks = _extend_left(toks)
        used.update(x.i for x in toks)
        out.append((toks, root_of(toks)))
    out.sort(key=lambda p: p[0][0].i)
    return [p for p in _join_thousands(out) if not _not_a_count(p[0])]


def _mistagged_number(t: Token, ent: Span | None = None) -> bool:
    """'"The official figure is 14," he said': the model tags a lone small number as DATE. A DATE
    entity that is nothing but a number of one to three digits, with no month or preposition of
    time around it, is a count. ``ent``: the entity that holds ``t``, when the caller has it."""
    if t.ent_type_ != "DATE" or not t.text.isdigit() or len(t.text) > 3:
        return False
    if ent is None:
        ent = next((e for e in t.doc.ents if e.start <= t.i < e.end), None)
    if ent is None or len(ent) != 1:
        return False
    prev = t.doc[t.i - 1].lower_ if t.i > 0 else ""
    nxt = t.doc[t.i + 1].lower_ if t.i + 1 < len(t.doc) else ""
    return prev not in _MONTHS | {"on", "the", "by", "until", "since", "from", "of"} and nxt not in _MONTHS


def _join_thousands(phrases: list[tuple[list[Token], Token]]) -> list[tuple[list[Token], Token]]:
    """'20, 000' (a thousands separator followed by a space, as in tokenised corpora) is one
    number, not 20 and 0."""
    out: list[tuple[list[Token], Token]] = []
    for toks, root in phrases:
        first = toks[0]
        if out and re.fullmatch(r"\d{3}", first.text) and first.i >= 2:
            prev_toks, _ = out[-1]
            comma, last = first.doc[first.i - 1], prev_toks[-1]
            if comma.text == "," and last.i == first.i - 2 and re.fullmatch(r"\d{1,3}", last.text):
                out[-1] = ([*prev_toks, comma, *toks], root)
                continue
        out.append((toks, root))
    return out


def _not_a_count(toks: list[Token]) -> bool:
    """Clock times and numeric dates ('9: 00 PM', '04 / 02 / 07'), zero-padded digit groups, and
    the generic pronoun 'one' ('when one is killed, all of us lose')."""
    doc = toks[0].doc
    first, last = toks[0], toks[-1]
    before = doc[first.i - 1].text if first.i > 0 else ""
    after = doc[last.i + 1].text if last.i + 1 < len(doc) else ""
    if before in ("/", ":") or after in ("/", ":"):
        return True
    if any(t.text.isdigit() and len(t.text) > 1 and t.text.startswith("0") and "," not in _text(toks) for t in toks):
        return True
    if len(toks) == 1 and first.lower_ == "one" and first.pos_ == "PRON":
        return not any(c.dep_ == "prep" and c.lower_ == "of" for c in first.children)
    return False


def _extend_left(toks: list[Token]) -> list[Token]:
    """Take in hedge words spaCy left out of the span ("at least" before a bare "20")."""
    doc = toks[0].doc
    best = toks
    start = toks[0].i
    for k in range(1, 5):
        i = start - k
        if i < 0 or doc[i].is_sent_start or doc[i].lower_ not in _HEDGE_WORDS:
            break
        cand = [doc[x] for x in range(i, start)] + toks
        if parse_quantity(_text(cand)) is not None and parse_quantity(_text(cand)) != parse_quantity(_text(toks)):
            best = cand
    return best


def _text(toks: list[Token]) -> str:
    return "".join(t.text_with_ws for t in toks).strip()


def _is_age(toks: list[Token]) -> bool:
    doc = toks[0].doc
    nxt = " ".join(doc[i].lower_ for i in range(toks[-1].i + 1, min(toks[-1].i + 4, len(doc))))
    prev = doc[toks[0].i - 1].lower_ if toks[0].i > 0 else ""
    return bool(re.match(r"(?:years?|-)\s*(?:-\s*)?(?:year\s*-\s*)?old\b|years? old|- year - old", nxt)) or prev in (
        "aged",
        "age",
    )


# --------------------------------------------------------------------------- counted noun, predicate


def _counted(root: Token) -> tuple[Token | None, Token]:
    """(counted noun or None, the token whose grammatical role carries the count)."""
    head = root.head
    if root.dep_ in ("nummod", "quantmod", "amod", "compound", "nmod", "det") and head != root and head.pos_ in (
        "NOUN",
        "PROPN",
    ):
        return head, head
    for c in root.children:
        if c.dep_ == "prep" and c.lower_ == "of":
            for p in c.children:
                if p.dep_ == "pobj" and p.pos_ in ("NOUN", "PROPN", "PRON"):
                    return (None if p.lower_ in _PARTITIVE_PRONOUNS else p), root
    return None, root


def _theme_of(noun: Token | None, lex: Lexicon) -> str | None:
    if noun is None:
        return None
    lem = _lemma(noun)
    comp = [c for c in noun.lefts if c.dep_ == "compound"]
    if comp:
        joined = f"{_lemma(comp[-1])} {lem}"
        if joined in lex.theme_class:
            return lex.theme_class[joined]
    return lex.theme_class.get(lem) or lex.theme_class.get(noun.lower_)


def _predicate(arg: Token, noun: Token | None, lex: Lexicon) -> tuple[str, Token] | None:
    """The lexicon predicate that has the count as its patient, and the token that carries it."""
    carrier = noun if noun is not None else arg
    if carrier is not None:
        # "... had been injured and 12 arrested": the number's own participle beats the verb it hangs on
        for ch in carrier.children:
            lem = _lemma(ch)
            if ch.dep_ == "acl" and ch.tag_ == "VBN" and lem in lex.verbs:
                return lex.verbs[lem], ch
            if ch.dep_ == "amod" and ch.lower_ in lex.adjectives:
                return lex.adjectives[ch.lower_], ch
            if ch.dep_ == "relcl" and lem in lex.verbs and any(c.dep_ == "nsubjpass" for c in ch.children):
                return lex.verbs[lem], ch
            if ch.dep_ == "relcl" and lem in lex.intransitive and any(
                c.dep_ == "nsubj" and c.lower_ in ("who", "that", "which") for c in ch.children
            ):
                return lex.intransitive[lem], ch
    a = arg
    while a.dep_ == "conj" and a.head.pos_ in ("NOUN", "PROPN", "NUM"):
        a = a.head
    head, dep = a.head, a.dep_
    if head == a:
        return None
    if dep == "conj" and _is_verbish(head):
        dep = "dobj"  # "detained three commanders and 20 other fighters": spaCy hangs the conjunct on the verb
    hl = _lemma(head)
    if _is_verbish(head):
        if dep == "dobj":
            for c in head.children:
                if c.dep_ == "prt" and f"{hl} {c.lower_}" in lex.phrasal:
                    return lex.phrasal[f"{hl} {c.lower_}"], head
                if (
                    c.dep_ == "prep"
                    and f"{hl} {c.lower_}" in lex.phrasal
                    and any(_lemma(p) == "custody" for p in c.children)
                ):
                    return lex.phrasal[f"{hl} {c.lower_}"], head
        if dep in _SUBJ and head.lower_ in lex.adjectives and head.tag_ in ("VBG", "VBN", "JJ") and any(
            _lemma(c) == "be" for c in head.children if c.dep_ in ("aux", "auxpass", "cop")
        ):
            return lex.adjectives[head.lower_], head  # "eight people were still missing" (tagged as a verb)
        if dep in ("dobj", "nsubjpass") and hl in lex.verbs:
            if _held_hostage(head):
                return None  # "hold 300 crew members to ransom": hostages, not detainees
            return lex.verbs[hl], head
        if dep == "nsubj" and hl in lex.say_verbs and _folded(a, lex) is not None:
            verb = a.doc[a.left_edge.i - 1]
            return lex.verbs[_lemma(verb)], verb
        if dep == "nsubj" and hl in lex.intransitive:
            return lex.intransitive[hl], head
        if (
            dep == "nsubj"
            and hl in lex.verbs
            and head.tag_ == "VBN"
            and not any(c.dep_ in ("aux", "dobj") for c in head.children)
        ):
            return lex.verbs[hl], head  # "... and 12 arrested": a passive with its auxiliary left out
        if dep in _SUBJ:
            for c in head.children:
                if c.dep_ in ("acomp", "oprd", "xcomp") and c.lower_ in lex.adjectives:
                    return lex.adjectives[c.lower_], head
                if c.dep_ == "prep" and c.lower_ == "among" and hl == "be":
                    for p in c.children:  # "20 soldiers were among the dead"
                        if p.dep_ == "pobj" and (p.lower_ in lex.adjectives or _lemma(p) in lex.implied_by_noun):
                            return lex.adjectives.get(p.lower_) or lex.implied_by_noun[_lemma(p)], head
    if dep == "pobj" and head.lower_ == "of" and head.head.pos_ == "NOUN" and _lemma(head.head) in lex.nouns:
        return lex.nouns[_lemma(head.head)], head.head
    return None


_HOSTAGE_WORDS = frozenset({"hostage", "hostages", "captive", "ransom"})


def _held_hostage(verb: Token) -> bool:
    """'hold 300 crew members to ransom', 'held them hostage' (the parser hangs 'to ransom' anywhere
    in the object phrase)."""
    return any(x.lower_ in _HOSTAGE_WORDS for c in verb.children if c.dep_ not in _SUBJ for x in c.subtree)


def _is_clause_head(t: Token) -> bool:
    # a "verb" in a nominal role is a tagging slip ("The US airstrikes in March killed ...")
    return _is_verbish(t) and t.dep_ not in ("nsubj", "nsubjpass", "dobj", "pobj", "amod", "compound")


def _clause_verb(t: Token) -> Token | None:
    if _is_clause_head(t):
        return t
    for a in _ancestors_until_sentence(t):
        if _is_clause_head(a):
            return a
    return None


# --------------------------------------------------------------------------- attribution, modality, event


def _say(anchor: Token, sent: Span, st: _State) -> _Say:
    lex = st.lex
    modality = "asserted"
    chain = [anchor, *_ancestors_until_sentence(anchor)]
    # "he doubted that X": only a clause under a doubt verb is doubted ("questioning the 14 men" is not)
    doubters = {a.i for prev, a in zip(chain, chain[1:]) if _lemma(a) in lex.doubt_verbs and prev.dep_ == "ccomp"}
    if doubters:
        modality = "doubted"
    pred_mods = {c.lower_ for c in anchor.children}
    if pred_mods & {"reportedly", "allegedly"} and modality == "asserted":
        modality = "reported"
    elif (pred_mods & lex.hedge_auxiliaries or pred_mods & lex.hedge_adverbs) and modality == "asserted":
        modality = "hedged"
    first: _Say | None = None
    for a in chain[1:]:
        lem = _lemma(a)
        if lem not in lex.say_verbs and a.i not in doubters:
            continue
        subj = _subject(a)
        if subj is None:
            trailing = _trailing_source(a, lex)
            if trailing is None:
                continue
            st.sources.append(trailing)
            return _Say(trailing[0], "attributed", modality, a)
        if subj.lower_ in _RELATIVE_PRONOUNS and a.dep_ in ("relcl", "acl"):
            subj = _antecedent(subj, a)  # "the health ministry in Lima, which said 85 ...": the antecedent speaks
        fold = _folded(subj, lex)
        text = _source_text(subj) if fold is None else _clean_phrase(subj.doc[fold.i : subj.right_edge.i + 1])
        if modality == "asserted" and any(c.dep_ == "advmod" and c.lower_ in lex.reported_adverbs for c in a.children):
            modality = "reported"
        if subj.lower_ in _PRONOUNS:
            resolved = _resolve_pronoun(subj, st)
            if first is None:
                first = _Say(resolved or text, "attributed", modality, a)
            continue  # a named speaker further up is better than "he"
        st.sources.append((text, subj))
        return _Say(text, "attributed", modality, a)
    if first is not None:
        first.modality = modality
        return first
    for t in sent:
        if t.lower_ == "according":
            for c in t.children:
                if c.lower_ == "to":
                    for p in c.children:
                        if p.dep_ == "pobj" and anchor.i not in {x.i for x in p.subtree}:
                            text = _source_text(p)
                            st.sources.append((text, p))
                            return _Say(text, "attributed", modality, t)
    return _Say(st.outlet, "outlet", modality, None)


def _trailing_source(verb: Token, lex: Lexicon) -> tuple[str, Token] | None:
    """'..., government officials and paramilitary sources said.' when the parser lost the subject:
    the short noun phrase between the last comma and a sentence-final say-verb."""
    sent = verb.sent
    after = [t for t in sent if t.i > verb.i and not t.is_punct and not t.is_space]
    if after:
        return None
    toks: list[Token] = []
    for i in range(verb.i - 1, max(sent.start, verb.i - 10) - 1, -1):
        t = verb.doc[i]
        if t.text == ",":
            break
        if _is_verbish(t) and t.dep_ not in ("amod", "compound"):
            return None
        toks.insert(0, t)
    else:
        return None
    heads = [t for t in toks if t.pos_ in ("NOUN", "PROPN") and _lemma(t) in lex.person_nouns]
    if not toks or not heads:
        return None
    return _clean_phrase(toks), heads[-1]


def _folded(subj: Token, lex: Lexicon) -> Token | None:
    """'... and detained 14 members of the group, government officials and sources said.': the
    parser often makes the object the say-verb's subject, with the real speakers as its conjuncts.
    Returns the first token of the speakers when ``subj`` looks like that, else None."""
    doc = subj.doc
    before = subj.left_edge.i - 1
    if before < 0 or not (doc[before].pos_ == "VERB" and _lemma(doc[before]) in lex.verbs):
        return None
    if any(c.dep_ == "dobj" for c in doc[before].children):
        return None
    for c in subj.subtree:
        if c.dep_ == "conj" and _lemma(c) in lex.person_nouns:
            start = c.left_edge
            if start.i > 0 and doc[start.i - 1].text == ",":
                return start
    return None


def _subject(verb: Token) -> Token | None:
    v: Token | None = verb
    for _ in range(4):
        if v is None:
            return None
        subjects = [c for c in v.children if c.dep_ == "nsubj"]
        if subjects:
            # "CUSCO, Peru - Firefighters said": a dateline parsed as a second subject comes first
            before = [c for c in subjects if c.i < v.i]
            return before[-1] if before else subjects[0]
        if v.dep_ in ("conj", "advcl", "xcomp") and v.head != v:
            v = v.head  # "denied any transfer and said ...": the subject of the first verb
        else:
            return None
    return None


_DASHES = frozenset({"-", "--", "\u2013", "\u2014"})
_RELATIVE_PRONOUNS = frozenset({"which", "who", "that"})


def _source_text(subj: Token) -> str:
    drop: set[int] = set()
    for t in subj.subtree:
        if t != subj and t.dep_ in ("relcl", "acl", "appos", "advcl"):
            drop.update(x.i for x in t.subtree)
    toks = sorted((t for t in subj.subtree if t.i not in drop), key=lambda t: t.i)
    return _clean_phrase(_strip_dateline(toks))


def _antecedent(rel: Token, clause: Token) -> Token:
    """The noun phrase a relative pronoun refers to: the one just before it ('..., which'),
    climbing out of its prepositional attachments ('the health ministry in Lima, which' ->
    ministry); the parser's attachment of the clause when there is none."""
    doc = rel.doc
    i = rel.i - 1
    while i >= 0 and doc[i].is_punct:
        i -= 1
    t = doc[i] if i >= 0 else clause.head
    if t.pos_ not in ("NOUN", "PROPN"):
        return clause.head
    while t.dep_ in ("compound", "flat"):
        t = t.head
    while t.dep_ == "pobj" and t.head.dep_ == "prep" and t.head.head.pos_ in ("NOUN", "PROPN"):
        t = t.head.head
    return t


def _strip_dateline(toks: list[Token]) -> list[Token]:
    """'AYACUCHO, Peru - Police said ...': the parser folds the dateline into the subject; a source
    phrase never spans a dash whose left part is a dateline (capitalised place names, dates,
    commas, an agency in brackets)."""
    cut = max((k for k, t in enumerate(toks) if t.text in _DASHES), default=None)
    if cut is None:
        return toks
    left = toks[:cut]
    if all(t.is_punct or t.pos_ in ("PROPN", "NUM") or t.is_upper or t.ent_type_ in ("GPE", "DATE", "ORG", "LOC")
           for t in left):
        return toks[cut + 1 :]
    return toks


def _resolve_pronoun(pron: Token, st: _State) -> str | None:
    """'he'/'she'/'they' -> the nearest earlier speaker of the same number in the article (simple
    recency): an attributed source whose head is a person noun or a person's name, or (he/she) a
    PERSON entity, named by its noun phrase ('Lena Haugen of the Workers' Alliance'; the title
    noun for an apposition: 'a police spokesman, Colonel X')."""
    low = pron.lower_
    if low not in ("he", "she", "they"):
        return None
    plural = low == "they"
    best: tuple[int, str] | None = None
    for text, head in st.sources:
        if head.i >= pron.i or (head.tag_ in ("NNS", "NNPS")) != plural:
            continue
        if _lemma(head) in st.lex.person_nouns or head.ent_type_ == "PERSON":
            if best is None or head.i > best[0]:
                best = (head.i, text)
    if not plural:
        for ent in st.ents:
            if ent.label_ != "PERSON" or ent.end > pron.i:
                continue
            r = ent.root
            if best is not None and r.i <= best[0]:
                continue
            speaker = r.head if r.dep_ == "appos" else r
            if speaker.dep_ != "nsubj" or _lemma(speaker.head) not in st.lex.say_verbs:
                continue  # only a person who spoke: "Kadhimi took office" does not make him "he"
            best = (r.i, _source_text(speaker))
    return best[1] if best is not None else None


_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)\b")
_MONTHS = frozenset(
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
# Words that make a DATE entity a time expression (besides numbers, months and main-time words):
# the model sometimes tags a place ("in the Ayacucho region") as DATE, and such an "anchor" would
# split the main event's claims off into an event of their own.
_TIME_WORDS = frozenset(
    "last past previous next earlier later ago recent coming this that same early late mid "
    "day days week weeks month months year years decade decades century centuries season "
    "spring summer autumn fall winter christmas easter ramadan eid new".split()
)


def _date_like(ent: Span, lex: Lexicon) -> bool:
    """Does a DATE/TIME entity read as a time at all (a digit, a month, a weekday or another
    time word)? Anything else is a tagging slip and anchors nothing, as is a lone number the model
    tags as DATE ("has risen to 58": a count, see :func:`_mistagged_number`)."""
    if len(ent) == 1 and _mistagged_number(ent[0], ent):
        return False
    words = {t.text.lower() for t in ent}
    return (
        any(ch.isdigit() for ch in ent.text)
        or bool(words & (_MONTHS | _TIME_WORDS | lex.main_time_words | _NUMBER_WORDS))
        or any(w.endswith(("day", "days")) for w in words)
    )


def _date_anchor(ent: Span, lex: Lexicon) -> str | None:
    """The anchor text of a DATE entity, or None when it names the main event's own time."""
    words = {t.lower_ for t in ent}
    if ent.label_ != "DATE" or words & lex.main_time_words:
        return None
    if words & _MONTHS and any(t.like_num and not _YEAR.fullmatch(t.text) for t in ent):
        return None  # "June 26": a day, the main event's dateline
    text = re.sub(r"^(?:the|in|on|since|during|over)\s+", "", ent.text.lower()).strip()
    return text or None


def _clause_group(verb: Token) -> set[int]:
    """Token ids of the clause heads that share one time frame with ``verb``: coordinated verbs
    ("killed six, injured 50 and caused damage in September") and participle adjuncts ("struck in
    September, killing seven"), climbing through a head the tagger took for a noun ("a gunman
    shot and wounded three")."""
    group = {verb.i}
    v = verb
    for _ in range(6):
        if v.head == v:
            break
        if v.dep_ in ("conj", "dep") or (
            v.dep_ == "advcl" and v.tag_ in ("VBG", "VBN") and not any(c.dep_ == "mark" for c in v.children)
        ):
            v = v.head
            group.add(v.i)
        else:
            break
    frontier = [verb.doc[i] for i in group]
    while frontier:
        g = frontier.pop()
        for c in g.children:
            if c.i in group or not _is_verbish(c):
                continue
            if c.dep_ in ("conj", "dep") or (c.dep_ == "advcl" and c.tag_ == "VBG"):
                group.add(c.i)
                frontier.append(c)
    return group


def _attached_to(r: Token, group: set[int]) -> bool:
    """Does the phrase headed by ``r`` hang (through prepositions and nouns) on a clause head of
    ``group``, before reaching another clause?"""
    for a in _ancestors_until_sentence(r):
        if a.i in group:
            return True
        if _is_clause_head(a):
            return False
    return False


def _fronted(ent: Span, sent: Span) -> bool:
    """'In early March, ...' / 'Last year, ...': a date opening the sentence, set off by a comma,
    frames every clause of it."""
    first = sent.start
    while first < ent.start and sent.doc[first].is_space:
        first += 1
    lead = [t.lower_ for t in sent.doc[first : ent.start]]
    return (
        lead in ([], ["in"], ["on"], ["since"], ["during"], ["by"], ["until"], ["early"], ["late"], ["in", "early"],
                 ["in", "late"])
        and ent.end < sent.end
        and sent.doc[ent.end].text == ","
    )


def _dated_relative(verb: Token | None, ent: Span) -> bool:
    """'since 2007, when a quake killed 500' / 'in December 2003, in which 31,000 were killed':
    a clause attached to a date is about that date's event."""
    if verb is None or verb.dep_ not in ("relcl", "acl", "advcl"):
        return False
    return ent.start <= verb.head.i < ent.end


def _event(predicate: str, anchor: Token, noun: Token | None, sent: Span, st: _State, own: Token | None = None) -> str:
    """``main`` or ``predicate@anchor`` (see the module docstring). ``own``: the claim's number
    token, so a place scope on it counts (see :func:`_place_scope`)."""
    verb = _clause_verb(anchor)
    group = _clause_group(verb) if verb is not None else set()
    best: tuple[int, str | None] | None = None
    for ent in st.sent_ents(sent):
        if ent.label_ not in ("DATE", "TIME", "GPE"):
            continue
        r = ent.root
        if ent.label_ == "GPE":
            if not (r.dep_ == "pobj" and r.head.lower_ == "in" and r.head.head in (anchor, noun, verb)):
                continue
            if _canonical(ent).lower() in st.main_gpes:
                continue
            label: str | None = _canonical(ent).lower()
        else:
            if not _date_like(ent, st.lex):
                continue
            label = _date_anchor(ent, st.lex)
        ok = False
        if anchor.pos_ == "NOUN" and r.i in {x.i for x in anchor.subtree}:
            ok = True
        elif verb is not None:
            rv = _clause_verb(r.head) if r.head != r else r
            if rv == verb:
                ok = True
            elif verb.dep_ in ("relcl", "acl") and verb.head in list(r.ancestors) and rv == _clause_verb(verb.head):
                ok = True
            elif ent.label_ != "GPE" and (
                _attached_to(r, group) or _dated_relative(verb, ent) or _fronted(ent, sent) or _measured(r, verb)
            ):
                ok = True
        if not ok:
            continue
        dist = min(abs(t.i - anchor.i) for t in ent)
        if best is None or dist < best[0]:
            best = (dist, label)
    if best is None and verb is not None and st.prev_anchor is not None and any(
        c.dep_ == "nsubj" and c.lower_ in ("it", "this", "that") for c in verb.children
    ):
        return f"{predicate}@{st.prev_anchor}"  # "It killed 612 people": the event the last sentence dated
    if best is None or best[1] is None:
        scope = None if predicate == "custody" else _place_scope(anchor, noun, verb, own, sent, st)
        return "main" if scope is None else f"{predicate}@{scope}"
    return f"{predicate}@{best[1]}"


# Cheap prefilter: a sentence with none of these words (and no place entity) has no place scope.
_SCOPE_CUE = re.compile(
    r"\b(?:across|throughout|nationwide|countrywide|worldwide|globally|internationally|statewide|around|all over|"
    r"cities|countries|states|provinces|nations|capitals)\b",
    re.IGNORECASE,
)


def _scope_marks(sent: Span, st: _State) -> list[tuple[Token, str, int]]:
    """The place scopes a sentence states, as (token the scope hangs from, label, rank), computed
    once per sentence. Labels: "nationwide" (nationwide, across/throughout the country), "worldwide"
    (worldwide, around the world), "continent", "region", "statewide", "across <place>" (across
    Europe), "<N> cities" / "cities" (in 12 cities, across several countries), or a place entity
    named with "in" that is not among the article's main places ("in Europe", "a quake in eastern
    China"; rank 2 for a LOC, 3 for a GPE; an adjective "nationwide" is rank 1 and scopes only the
    noun it modifies). The lowest rank wins: "in cities across the country" is nationwide."""
    cached = st.scopes.get(sent.start)
    if cached is not None:
        return cached
    lex = st.lex
    out: list[tuple[Token, str, int]] = []
    places = [e for e in st.sent_ents(sent) if e.label_ in ("GPE", "LOC")]
    if _SCOPE_CUE.search(sent.text) or places:
        for t in sent:
            low = t.lower_
            if low in lex.scope_adverbs and t.pos_ in ("ADV", "ADJ"):
                # "200 arrested nationwide", "nationwide arrests"; not "took part in a nationwide strike"
                rank = 1 if t.dep_ == "amod" else 0
                out.append((t, lex.scope_adverbs[low], rank))
                continue
            if t.dep_ != "prep" or low not in ("across", "throughout", "around", "over", "in"):
                continue
            p = next((c for c in t.children if c.dep_ == "pobj"), None)
            if p is None:
                continue
            ent = next((e for e in places if e.start <= p.i < e.end), None)
            plural = _lemma(p) in lex.scope_places and p.tag_ in ("NNS", "NNPS")
            if low != "in" and _lemma(p) in lex.scope_nouns and ent is None:
                label = lex.scope_nouns[_lemma(p)]
                if low == "around" and label != "worldwide":
                    continue
                if low == "over" and not (t.i > 0 and t.doc[t.i - 1].lower_ == "all"):
                    continue  # "all over the country", not "over the country's future"
                out.append((t, label, 0))
            elif low in ("across", "throughout") and ent is not None:
                out.append((t, f"across {_canonical(ent).lower()}", 0))
            elif plural and low in ("across", "throughout", "in"):
                out.append((t, _places_label(p, lex), 1))
            elif low == "in" and ent is not None and _canonical(ent).lower() not in st.main_gpes:
                out.append((t, _canonical(ent).lower(), 3 if ent.label_ == "GPE" else 2))
    st.scopes[sent.start] = out
    return out


def _places_label(p: Token, lex: Lexicon) -> str:
    """'12 cities' for "in 12 cities", else the plural alone ("in several cities" -> 'cities')."""
    num = next((c for c in p.children if c.dep_ == "nummod"), None)
    if num is not None:
        value = parse_quantity(_text(sorted(num.subtree, key=lambda x: x.i)), band=lex.band)
        if value is not None and value.exact:
            return f"{int(value.lo)} {p.lower_}"
    return p.lower_


def _place_scope(
    anchor: Token, noun: Token | None, verb: Token | None, own: Token | None, sent: Span, st: _State
) -> str | None:
    """The place scope of a claim's clause (see :func:`_scope_marks`), or None: a scope counts when
    it hangs, through nouns and prepositions only, on the claim's predicate, counted noun, number
    or clause verb (the subject and the agent included: "the riots in cities throughout the country
    left 70 injured", "killed by a quake in eastern China"), without crossing another clause or
    another count ("arrested 12 in Athens and 200 nationwide": only 200 is nationwide). An "in
    <place>" directly on the predicate, noun or verb is left to the place anchor of :func:`_event`
    (which a nearer main-time date overrides)."""
    marks = _scope_marks(sent, st)
    if not marks:
        return None
    targets = {x.i for x in (anchor, noun, verb, own) if x is not None}
    best: tuple[int, int, str] | None = None
    direct = {x.i for x in (anchor, noun, verb) if x is not None}
    for t, label, rank in marks:
        if rank == 3 and t.head.i in direct:
            continue  # "in <GPE>" on the predicate itself: the place anchor's business
        attached = _hangs_on(t, targets) if rank == 0 else _on_participant(t, targets)
        if not attached or (own is not None and _count_between(own, t)):
            continue
        cand = (rank, abs(t.i - anchor.i), label)
        if best is None or cand < best:
            best = cand
    return None if best is None else best[2]


def _on_participant(t: Token, targets: set[int]) -> bool:
    """Does the scope word hang on a target itself, on its subject ("protests in 20 cities led
    to 450 arrests") or on its agent ("killed by a quake in eastern China")? Not on an object or
    a destination: "moved him to the prison in Beaumont" says where the prison is."""
    h = t.head
    if t.dep_ == "amod":
        return h.i in targets
    if h.i in targets:
        return True
    if h.dep_ in _SUBJ and h.head.i in targets:
        return True
    return h.dep_ == "pobj" and h.head.lower_ == "by" and h.head.head.i in targets


def _count_between(own: Token, t: Token) -> bool:
    """Is there another number between the claim's number and the scope word? 'arrested 12 people
    in Lyon and more than 200 nationwide': the parser hangs "nationwide" on the verb, but it
    scopes the nearer count only."""
    scope_own = {x.i for x in t.subtree}
    lo, hi = sorted((own.i, t.i))
    doc = own.doc
    return any(
        (doc[i].like_num or doc[i].pos_ == "NUM") and i not in scope_own and doc[i].head != own and i != own.i
        for i in range(lo + 1, hi)
    )


def _hangs_on(t: Token, targets: set[int]) -> bool:
    """Does ``t`` hang on one of ``targets`` through nouns and prepositions only (no other clause
    head, no other count on the way)?"""
    a = t
    for _ in range(12):
        if a.i in targets:
            return True
        if a is not t and (_is_clause_head(a) or a.pos_ == "NUM" or any(c.dep_ == "nummod" for c in a.children)):
            return False
        if a.head == a:
            return False
        a = a.head
    return False


def _measured(r: Token, verb: Token) -> bool:
    """'two years after the city was destroyed in a quake that killed ...': a clause placed by a
    distance in time ("N years after/before/since") is another event."""
    if r.dep_ != "npadvmod":
        return False
    if r.head.lower_ in ("after", "before", "since"):
        clause = r.head.head
    elif any(c.dep_ == "mark" and c.lower_ in ("after", "before", "since") for c in r.head.children):
        clause = r.head
    else:
        return False
    return clause == verb or clause in verb.ancestors


def _segment(sent: Span, at: Token | None, text: str) -> tuple[int, int]:
    """Character offsets of the sentence, cut at blank lines: the parser often runs a headline or a
    dateline into the first paragraph, and the quote shown to editors should be the paragraph's."""
    start, end = sent.start_char, sent.end_char
    if at is not None and "\n\n" in text[start:end]:
        for t in sent:
            if "\n\n" in t.text or "\n\n" in t.whitespace_:
                cut = t.idx + len(t.text_with_ws)
                if t.i < at.i:
                    start = cut
                elif t.i > at.i:
                    end = t.idx
                    break
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _make(
    st: _State,
    sent: Span,
    *,
    predicate: str,
    theme: str,
    event: str,
    value: Interval | None = None,
    slot: str | None = None,
    say: _Say,
    polarity: str = "asserted",
    denies: str | None = None,
    at: Token | None = None,
    revision: bool = False,
) -> Claim:
    kind = "slot" if slot is not None else "count"
    start, end = _segment(sent, at, st.text)
    cid = stable_id(st.article_id, str(start), predicate, theme, str(value if slot is None else slot))
    return Claim(
        id=cid,
        article_id=st.article_id,
        predicate=predicate,
        theme=theme,
        event=event,
        kind=kind,
        value=value,
        slot=slot,
        polarity=polarity,  # type: ignore[arg-type]
        modality=say.modality,  # type: ignore[arg-type]
        source=say.source,
        source_kind=say.kind,  # type: ignore[arg-type]
        sentence=st.text[start:end],
        start=start,
        end=end,
        denies=denies,
        revision=revision,
    )


# --------------------------------------------------------------------------- the passes


def _demonym(t: Token) -> str | None:
    """'Iranian'/'Iranians'/'an Iranian' -> 'iranian' (a NORP word naming a nationality)."""
    if t.ent_type_ != "NORP" or not t.text[:1].isupper():
        return None
    low = t.lower_
    return low[:-1] if low.endswith("s") and not low.endswith("ss") else low


def _nationality_of(root: Token, noun: Token | None, st: _State) -> tuple[str, Token] | None:
    """'one of them was Iranian' / 'there were no Iranians': (demonym, copula) when it applies."""
    head = root.head
    if _lemma(head) != "be":
        return None
    for c in head.children:
        if c.dep_ in ("attr", "acomp") and c != root:
            d = _demonym(c)
            if d:
                return d, head
    return None


def _count_from_number(sent: Span, toks: list[Token], root: Token, st: _State) -> None:
    lex = st.lex
    if _is_age(toks):
        return
    value = parse_quantity(_text(toks), band=lex.band)
    if value is None:
        return
    noun, arg = _counted(root)
    # "one of those commanders was Iranian": a nationality count among the current frame's people
    if arg == root and root.dep_ == "nsubj":
        nat = _nationality_of(root, noun, st)
        frame = st.frame()
        if nat is not None and frame is not None:
            if noun is None or _theme_of(noun, lex) is not None:
                say = _say(nat[1], sent, st)
                v = Interval(lo=value.lo, hi=None, hedge="at least", fuzzy=value.fuzzy)
                st.emit(_make(st, sent, predicate="nationality", theme=f"people:{nat[0]}", event=frame.event,
                              value=v, say=say, at=nat[1]))
            return
    # "A PMF official said it was 19": the number completes the article's current frame
    if noun is None and root.dep_ == "attr" and _lemma(root.head) == "be":
        subj = next((c for c in root.head.children if c.dep_ == "nsubj"), None)
        if subj is not None and _lemma(subj) in lex.copula_subjects:
            say = _say(root.head, sent, st)
            frame = st.frame()
            if frame is not None and (say.kind == "attributed" or subj.lower_ not in ("it", "that")):
                st.emit(_make(st, sent, predicate=frame.predicate, theme=frame.theme, event=frame.event,
                              value=value, say=say, at=root))
            return
    toll = _toll(root, lex)
    if toll is not None:
        if _forecast(toll.verb):
            return  # "the toll could rise to 50", "is expected to climb to 50": not a figure yet
        say = _say(toll.verb, sent, st)
        event = _event(toll.predicate, toll.verb, None, sent, st, own=root)
        if toll.exceeds and value.exact:
            value = Interval(lo=value.lo + 1, hi=None, hedge="more than", fuzzy=value.fuzzy)
        st.emit(_make(st, sent, predicate=toll.predicate, theme="people", event=event, value=value, say=say,
                      at=toll.verb, revision=toll.revision or _up_from((toll.verb,))))
        return
    crowd = _crowd(root, arg, noun, lex)
    if crowd is not None:
        say = _say(root, sent, st)
        ev = _event("count", crowd, noun, sent, st, own=root)
        event = "count:crowd" if ev == "main" else f"count:crowd@{ev.split('@', 1)[1]}"
        st.emit(_make(st, sent, predicate="count", theme="people", event=event, value=value, say=say, at=crowd))
        return
    theme = _theme_of(noun, lex)
    if noun is not None and theme is not None:
        summed = _conjoined(noun, theme, value, lex)
        if summed is None:
            return  # a later conjunct of "two women and one man": counted with the first
        value = summed
    found = _predicate(arg, noun, lex)
    count_verb: str | None = None
    if found is None:
        if theme == "attacks" or (theme == "troops" and _is_stock(arg, lex)):
            verb = _clause_verb(arg)
            found = (theme, verb if verb is not None else arg)
        elif noun is not None and _lemma(noun) in lex.implied_by_noun and not _record(noun):
            found = (lex.implied_by_noun[_lemma(noun)], noun)
        elif theme is not None and arg.dep_ in ("nsubj", "dobj", "nsubjpass") and _is_verbish(arg.head):
            vl = _lemma(arg.head)
            if (
                vl in ("be", "have", "include", "do")
                or vl in lex.say_verbs
                or vl in lex.verbs  # the agent of a lexicon verb ("five gunmen killed ...") is no count
                or vl in lex.custody_verbs
                or arg.head.pos_ != "VERB"
            ):
                return
            found, count_verb = ("count", arg.head), vl
        else:
            return
    predicate, anchor = found
    if theme is None:
        if noun is not None or predicate not in lex.human_predicates:
            return  # counted noun outside the theme table: not sure what is counted
        theme = "people"
    say = _say(anchor, sent, st)
    polarity = "denied" if any(c.dep_ == "neg" for c in anchor.children) else "asserted"
    if count_verb is not None:
        ev = _event("count", anchor, noun, sent, st, own=root)
        event = f"count:{count_verb}" if ev == "main" else f"count:{count_verb}@{ev.split('@', 1)[1]}"
    else:
        event = _event(predicate, anchor, noun, sent, st, own=root)
    if noun is not None and any(c.dep_ == "amod" and c.lower_ == "other" for c in noun.children):
        value = _others(st, predicate, theme, event, value)
    revision = predicate in lex.human_predicates and _up_from((anchor, noun, root, _clause_verb(anchor)))
    st.emit(_make(st, sent, predicate=predicate, theme=theme, event=event, value=value, say=say,
                  polarity=polarity, at=anchor, revision=revision))


def _nummod_value(noun: Token, lex: Lexicon, *, article: bool = False) -> Interval | None:
    """The count on a noun: its number ('two women'), or with ``article`` 1 for 'a man'."""
    num = next((c for c in noun.children if c.dep_ == "nummod"), None)
    if num is None:
        singular = noun.tag_ in ("NN", "NNP")
        if article and singular and any(c.dep_ == "det" and c.lower_ in ("a", "an") for c in noun.children):
            return Interval(lo=1.0, hi=1.0)
        return None
    return parse_quantity(_text(sorted(num.subtree, key=lambda x: x.i)), band=lex.band)


def _conjoined(noun: Token, theme: str, value: Interval, lex: Lexicon) -> Interval | None:
    """'two women and one man died': conjoined counts of one theme class are parts of one figure.
    Returns the sum for the first conjunct, None for a later one (already counted), and ``value``
    unchanged when the noun has no such conjunct. 'Three commanders and 20 OTHER fighters' is not
    summed here (different classes; see :func:`_others`)."""

    def same(t: Token) -> bool:
        return (
            t.pos_ in ("NOUN", "PROPN")
            and _theme_of(t, lex) == theme
            and _nummod_value(t, lex, article=True) is not None
            and not any(c.dep_ == "amod" and c.lower_ in ("other", "another") for c in t.children)
        )

    if not same(noun):
        return value
    first = noun
    while first.dep_ == "conj" and same(first.head):
        first = first.head
    members = [first]
    frontier = [first]
    while frontier:  # "two women, one man and a boy": conjuncts hang on each other
        t = frontier.pop()
        for c in t.children:
            if c.dep_ == "conj" and same(c):
                members.append(c)
                frontier.append(c)
    if len(members) == 1:
        return value
    numbered = [m for m in sorted(members, key=lambda m: m.i) if _nummod_value(m, lex) is not None]
    if not numbered or numbered[0] != noun:
        return None  # counted once, from the first conjunct that has a number
    total = value
    for m in members:
        if m != noun:
            extra = _nummod_value(m, lex, article=True)
            assert extra is not None
            total = add(total, extra)
    return total


def _crowd(root: Token, arg: Token, noun: Token | None, lex: Lexicon) -> Token | None:
    """The token carrying a crowd-size frame for this number, or None.

    '40,000 people marched / took part / took to the streets / gathered' (a person noun or a bare
    number as the subject of a crowd verb), 'estimated/put the crowd at 15,000', 'the turnout was
    15,000', 'a crowd of 15,000'."""
    # "a crowd of 15,000 (people)"
    if root.dep_ == "pobj" and root.head.lower_ == "of" and _lemma(root.head.head) in lex.crowd_nouns:
        return root.head.head
    if (
        noun is not None
        and noun.dep_ == "pobj"
        and noun.head.lower_ == "of"
        and _lemma(noun.head.head) in lex.crowd_nouns
    ):
        return noun.head.head
    # "estimated the crowd at 15,000"
    if root.dep_ == "pobj" and root.head.lower_ == "at" and noun is None:
        verb = root.head.head
        if _is_verbish(verb) and _lemma(verb) in lex.crowd_estimate_verbs:
            if any(c.dep_ in ("dobj", "nsubj", "nsubjpass") and _lemma(c) in lex.crowd_nouns for c in verb.children):
                return verb
    # "the turnout was 15,000"
    if noun is None and root.dep_ == "attr" and _lemma(root.head) == "be":
        if any(c.dep_ == "nsubj" and _lemma(c) in lex.crowd_nouns for c in root.head.children):
            return root.head
    # "40,000 people marched"; "another 20,000 marched in X" is another crowd, not a figure for this one
    if arg.dep_ != "nsubj" or not _is_verbish(arg.head):
        return None
    if any(t.lower_ in ("another", "other") for t in (*root.subtree, *arg.children)):
        return None
    if noun is not None:
        theme = _theme_of(noun, lex)
        if _lemma(noun) not in lex.crowd_people and theme != "people" and theme not in lex.person_groups:
            return None
    verb = arg.head
    vl = _lemma(verb)
    if vl in lex.crowd_verbs:
        return verb
    for c in verb.children:
        if c.dep_ in ("dobj", "prt", "prep") and f"{vl} {c.lower_}" in lex.crowd_phrasal:
            if f"{vl} {c.lower_}" == "take to" and not any(_lemma(x) == "street" for x in c.children):
                continue
            return verb
    return None


def _is_stock(arg: Token, lex: Lexicon) -> bool:
    """'there were 5,200 troops', 'has 2,500 troops', 'deployed 3,000 troops': a troop level, not
    troops as the patient of some other event (which would not be comparable)."""
    head = arg.head
    return head != arg and arg.dep_ in ("attr", "dobj", "nsubj", "nsubjpass") and _lemma(head) in lex.troop_verbs


def _others(st: _State, predicate: str, theme: str, event: str, value: Interval) -> Interval:
    """'at least 20 OTHER fighters': add the most recent subgroup count of the same event."""
    for c in reversed(st.claims):
        if (
            c.predicate == predicate
            and c.event == event
            and c.polarity == "asserted"
            and c.value is not None
            and st.lex.subgroups.get(c.theme) == theme
            and c.value.lo > 0
        ):
            return add(c.value, value)
    return Interval(lo=value.lo, hi=None, hedge="at least", fuzzy=value.fuzzy)


_TALLY_NOUNS = frozenset({"number", "tally", "total", "count", "figure"})


@dataclass(frozen=True)
class _Toll:
    """A figure stated as the value of a running tally ("the death toll rose to 300")."""

    predicate: str
    verb: Token
    revision: bool  # the verb says the count went UP to the figure ("rose to", "raising the toll to")
    exceeds: bool  # "the toll topped 100": more than the figure


def _toll(root: Token, lex: Lexicon) -> _Toll | None:
    """'the death toll rose to 300' / 'the death toll stands at 300' -> killed; 'the number of
    injured rose to 112' / 'the number of people missing stood at 8' -> the predicate of the
    counted word; 'the toll climbed from 6 to 11'; 'deaths rose to 40' (a counted noun that rises
    on its own); 'raising / bringing the death toll to 41' (the toll as the object)."""
    t = root
    if t.dep_ == "pobj" and t.head.lower_ in ("to", "at"):
        t = t.head
        if t.head.lower_ == "from" and t.head.dep_ == "prep":
            t = t.head  # "climbed from 6 to 11": the parser hangs "to 11" on "from"
    verb = t.head
    if t.dep_ not in ("prep", "dobj", "attr"):
        return None
    if t.lower_ == "to" and verb.dep_ == "dobj" and _lemma(verb.head) in lex.toll_raising:
        verb = verb.head  # "raising the toll to 41" with "to" hung on the toll
    lem = _lemma(verb)
    if lem in lex.toll_verbs:
        rising = lem in lex.toll_rising
        for c in verb.children:
            if c.dep_ != "nsubj":
                continue
            pred = _toll_noun(c, lex)
            if pred is None and rising and _lemma(c) in lex.toll_risers:
                pred = lex.implied_by_noun.get(_lemma(c)) or lex.toll_nouns.get(_lemma(c))
            if pred is not None:
                return _Toll(pred, verb, rising or _now(verb), lem in lex.toll_exceeding)
    if lem in lex.toll_raising and t.lower_ == "to" and _is_verbish(verb):
        for c in verb.children:
            if c.dep_ == "dobj" and (pred := _toll_noun(c, lex)) is not None:
                return _Toll(pred, verb, True, False)
    return None


def _forecast(verb: Token) -> bool:
    """'could rise to 50', 'will climb to 50', 'is expected to reach 50': a base-form toll verb
    under a modal or an infinitive 'to' is a forecast, not a count."""
    return verb.tag_ == "VB" and any(c.dep_ == "aux" for c in verb.children)


def _now(verb: Token) -> bool:
    """'the death toll now stands at 64': a standing figure that says it has changed."""
    return any(c.dep_ == "advmod" and c.lower_ == "now" for c in verb.children)


def _toll_noun(c: Token, lex: Lexicon) -> str | None:
    """The predicate a tally noun counts: 'death toll' / 'casualty toll' -> killed, 'injury toll'
    -> injured, 'the number of injured / of people detained' -> its counted word, and a toll
    named by nothing else ('the toll', 'the quake toll') -> killed; None for other nouns."""
    lem = _lemma(c)
    if lem not in _TALLY_NOUNS | {"toll"}:
        return None
    if lem == "toll":
        for m in c.children:
            if m.dep_ in ("compound", "amod"):
                ml = _lemma(m)
                pred = lex.toll_nouns.get(ml) or lex.implied_by_noun.get(ml) or lex.adjectives.get(m.lower_)
                if pred is not None:
                    return pred
    for of in c.children:
        if of.dep_ == "prep" and of.lower_ == "of":
            for x in of.children:
                if x.dep_ == "pobj" and (pred := _tallied(x, lex)) is not None:
                    return pred
            # "the number of people detained": the parser hangs the participle on "number"
            for a in c.children:
                if a.dep_ == "acl" and a.tag_ == "VBN" and _lemma(a) in lex.verbs:
                    return lex.verbs[_lemma(a)]
    return "killed" if lem == "toll" else None


def _up_from(tokens: Iterable[Token | None]) -> bool:
    """'At least 31 people have died, up from 22': an 'up from' on the count's clause says the
    figure replaces a smaller one."""
    for t in tokens:
        if t is None:
            continue
        for c in t.children:
            if c.lower_ == "up" and c.i + 1 < len(c.doc) and c.doc[c.i + 1].lower_ == "from":
                return True
    return False


def _tallied(x: Token, lex: Lexicon) -> str | None:
    """The predicate of what 'the number of X' counts: 'injured', 'dead', 'deaths', 'detainees',
    'people missing/killed'."""
    if x.lower_ in lex.adjectives:
        return lex.adjectives[x.lower_]
    if _lemma(x) in lex.implied_by_noun:
        return lex.implied_by_noun[_lemma(x)]
    if _theme_of(x, lex) == "people":
        for c in x.children:
            if c.dep_ in ("amod", "acl") and c.lower_ in lex.adjectives:
                return lex.adjectives[c.lower_]
            if c.dep_ == "acl" and c.tag_ == "VBN" and _lemma(c) in lex.verbs:
                return lex.verbs[_lemma(c)]
    return None


def _zero_count(sent: Span, noun: Token, st: _State) -> None:
    """'no commander was detained' -> commanders [0, 0]; 'there were no Iranians' -> nationality 0."""
    lex = st.lex
    zero = Interval(lo=0.0, hi=0.0)
    d = _demonym(noun)
    if d is not None and noun.dep_ == "attr" and _lemma(noun.head) == "be" and any(
        c.dep_ == "expl" for c in noun.head.children
    ):
        frame = st.frame()
        if frame is not None:
            say = _say(noun.head, sent, st)
            st.emit(_make(st, sent, predicate="nationality", theme=f"people:{d}", event=frame.event,
                          value=zero, say=say, at=noun))
        return
    theme = _theme_of(noun, lex)
    if theme is None:
        return
    found = _predicate(noun, noun, lex)
    if found is None and _lemma(noun) in lex.implied_by_noun:
        found = (lex.implied_by_noun[_lemma(noun)], noun)  # "no injuries were reported"
    if found is None:
        return
    predicate, anchor = found
    say = _say(anchor, sent, st)
    st.emit(_make(st, sent, predicate=predicate, theme=theme, event=_event(predicate, anchor, noun, sent, st),
                  value=zero, say=say, at=anchor))


#: Modifiers that make "four prior arrests" someone's record, not a count of this event.
_RECORD_WORDS = frozenset({"prior", "previous", "past", "earlier", "former"})


def _record(noun: Token) -> bool:
    """'Gray has four prior arrests': a noun that carries its predicate but counts a record of
    earlier occasions (times one person was arrested), not people of this event."""
    return any(c.dep_ == "amod" and c.lower_ in _RECORD_WORDS for c in noun.children)


def _peopleish(t: Token, lex: Lexicon) -> bool:
    """Does ``t`` refer to detained people (a people/commanders noun, or them/those/who)?"""
    if t.lower_ in ("them", "they", "those", "who", "these", "he", "she", "him", "her"):
        return True
    return _theme_of(t, lex) in ("people", "commanders")


def _slot_text(t: Token, ents: tuple[Span, ...]) -> str:
    """Light canonical form of the noun phrase headed by ``t`` (entities by canonical name)."""
    doc = t.doc
    for ent in ents:
        if ent.root == t and all(x.i in range(ent.start, ent.end) or x.is_punct or x.dep_ == "det"
                                 for x in t.subtree if x.dep_ not in ("prep", "relcl", "acl", "appos")):
            return _canonical(ent)
    left: set[int] = {t.i}
    for c in t.lefts:
        if c.dep_ in ("compound", "amod", "nmod", "poss", "nummod"):
            left.update(x.i for x in c.subtree)
    text = _clean_phrase(doc[i] for i in left)
    text = re.sub(r"^(?:the|a|an)\s+", "", text, flags=re.I)
    for c in t.rights:
        if c.dep_ == "prep" and c.lower_ == "of":
            for p in c.children:
                if p.dep_ == "pobj":
                    appos = [a for a in p.children if a.dep_ == "appos" and a.ent_type_]
                    named = appos[0] if appos else _apposed_entity(p, ents)
                    return f"{text} of {_slot_text(named if named is not None else p, ents)}"
    return text


def _apposed_entity(t: Token, ents: tuple[Span, ...]) -> Token | None:
    """'..., Iraq's umbrella grouping, the Popular Mobilization Forces (PMF)': the named entity that
    directly follows the phrase after a comma (the parser often misattaches such appositions)."""
    doc = t.doc
    i = t.right_edge.i + 1
    if i >= len(doc) or doc[i].text != ",":
        return None
    i += 1
    if i < len(doc) and doc[i].lower_ == "the":
        i += 1
    for ent in ents:
        if ent.start == i and ent.label_ in ("ORG", "NORP", "PERSON", "FAC", "GPE"):
            return ent.root
    return None


def _custody(sent: Span, st: _State) -> None:
    """Who holds the detainees: 'transferred to X', 'handed over to X', 'in the custody of X'."""
    lex = st.lex
    doc = sent.doc
    for i in range(sent.start, sent.end):
        lem = st.lemmas[i]
        if lem not in lex.custody_verbs and lem != "custody":
            continue
        t = doc[i]
        if _is_verbish(t) and lem in lex.custody_verbs:
            if lem in ("hand", "turn") and not any(c.lower_ == "over" for c in t.children):
                continue
            patient = next((c for c in t.children if c.dep_ in ("dobj", "nsubjpass")), None)
            if patient is None or not _peopleish(patient, lex):
                continue
            dest = next((p for c in t.children if c.dep_ == "prep" and c.lower_ == "to"
                         for p in c.children if p.dep_ == "pobj"), None)
            say = _say(t, sent, st)
            if dest is not None:
                polarity = "denied" if any(c.dep_ == "neg" for c in t.children) else "asserted"
                st.emit(_make(st, sent, predicate="custody", theme="people", event=_event("custody", t, None, sent, st),
                              slot=_slot_text(dest, st.ents), say=say, polarity=polarity, at=t))
            elif say.modality == "doubted":
                prior = next((c for c in reversed(st.claims) if c.predicate == "custody" and c.polarity == "asserted"), None)
                if prior is not None:
                    st.emit(_make(st, sent, predicate="custody", theme=prior.theme, event=prior.event,
                                  slot=prior.slot, say=say, denies=prior.id, at=t))
        elif lem == "custody" and t.dep_ == "pobj" and t.head.lower_ == "in":
            holder = next((p for c in t.children if c.dep_ == "prep" and c.lower_ == "of"
                           for p in c.children if p.dep_ == "pobj"), None)
            if holder is None:
                holder = next((c for c in t.children if c.dep_ in ("poss", "compound")), None)
            carrier = t.head.head
            subj = next((c for c in carrier.children if c.dep_ in _SUBJ), None) if _is_verbish(carrier) else carrier
            if holder is None or subj is None or not _peopleish(subj, lex):
                continue
            say = _say(carrier, sent, st)
            st.emit(_make(st, sent, predicate="custody", theme="people",
                          event=_event("custody", carrier, None, sent, st), slot=_slot_text(holder, st.ents), say=say, at=carrier))


def _denials(sent: Span, st: _State) -> None:
    """'X denied this' / 'denied any (such) transfer': a denial of the latest matching claim."""
    lex = st.lex
    doc = sent.doc
    for i in range(sent.start, sent.end):
        if st.lemmas[i] not in lex.deny_verbs:
            continue
        t = doc[i]
        if not _is_verbish(t):
            continue
        obj = next((c for c in t.children if c.dep_ == "dobj"), None)
        if obj is None:
            continue
        mods = {c.lower_ for c in obj.children if c.dep_ in ("det", "amod", "predet")}
        custody = _lemma(obj) in lex.custody_nouns
        generic = _lemma(obj) in lex.generic_objects or bool(mods & lex.generic_determiners)
        if not (custody or (generic and obj.pos_ == "PRON")):
            continue  # "denied responsibility": not a denial of a reported fact
        prior = next(
            (c for c in reversed(st.claims) if (not custody or c.predicate == "custody") and c.polarity == "asserted"),
            None,
        )
        subj = _subject(t)
        if subj is not None:
            text = _source_text(subj)
            if subj.lower_ in _PRONOUNS:
                text = _resolve_pronoun(subj, st) or text
            else:
                st.sources.append((text, subj))
            say = _Say(text, "attributed", "asserted", t)
        else:
            say = _say(t, sent, st)
        if prior is not None:
            st.emit(_make(st, sent, predicate=prior.predicate, theme=prior.theme, event=prior.event,
                          value=prior.value, slot=prior.slot, say=say, polarity="denied", denies=prior.id, at=t))
        elif custody:
            st.emit(_make(st, sent, predicate="custody", theme="people", event="main", slot="unspecified",
                          say=say, polarity="denied", at=t))
