"""Turn a raw article body (plain text or an HTML page) into clean article text.

Contract of :func:`normalise`: any ``str`` in, a ``str`` out, never an exception; the result is
deterministic, its paragraphs are separated by exactly one blank line (``"\\n\\n"``) and hold no
other newline, and ``normalise(normalise(x)) == normalise(x)`` for ordinary articles.

What it does, in order:

1. HTML pages go through trafilatura (offline) to keep only the main text.
2. Characters: NFC, no zero-width or control characters (newlines kept), one space per run.
3. Page furniture is dropped line by line: a short list of :data:`FURNITURE_PATTERNS` (widgets,
   capture dates, breadcrumbs, ads, PDF running heads) plus structural rules (a line repeated
   right after itself, short lines repeated three times or more, lines that are mostly not
   letters, a run of size-picker tokens, short label lines after the last real paragraph). The
   rules only ever match lines that are not sentences. Bylines ("Report by ...", "Editing by ...")
   are kept: they are real text, and downstream stages can ignore them.
4. Text extracted from a two-column PDF page, whose physical lines hold a left-column line and a
   right-column line glued with a space, is detected and rebuilt column by column
   (:func:`_deinterleave`).
5. Lines are joined into paragraphs, repairing words hyphenated across line breaks
   (:func:`_join_hyphenated` documents the rule).
6. Small-caps/OCR case artefacts are repaired (``uS`` -> ``US``, ``iraQ IN May`` -> ``Iraq In
   May``, ``the united States`` -> ``the United States``).

Rewording artefacts of machine-rewritten copies are left as they are.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

__all__ = ["FURNITURE_PATTERNS", "looks_like_html", "normalise", "split_title"]

# --------------------------------------------------------------------------- characters

# Zero-width and invisible formatting characters, and the soft hyphen: removed outright.
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e\u2061\u2062\u2063\u2064]")
_LINE_BREAKS = re.compile(r"\r\n|[\r\u2028\u2029\x0b\x0c\x85]")
_SPACES = re.compile(r"[^\S\n]+")  # any whitespace but the newline
_SOFT_HYPHEN_EOL = re.compile("\u00ad[^\\S\n]*\n")
# C0/C1 controls (tab and newline excepted), bidi overrides and lone surrogates.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _clean_chars(text: str) -> str:
    """NFC, ``\n`` line ends, no invisible or control characters, one space between words."""
    text = unicodedata.normalize("NFC", text)
    text = _LINE_BREAKS.sub("\n", text)
    # A soft hyphen at a line end marks a word broken across the lines: keep it as a hyphen so
    # that the paragraph joiner repairs the word; elsewhere it is invisible and goes.
    text = _INVISIBLE.sub("", _SOFT_HYPHEN_EOL.sub("-\n", text))
    # A control character between two words must not glue them together: it becomes a space.
    text = _CONTROL.sub(" ", text)
    return "\n".join(" ".join(line.split()) for line in text.split("\n"))


# --------------------------------------------------------------------------- HTML

_HTML_MARKERS = re.compile(r"<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>]", re.I)
_HTML_TAG = re.compile(r"</?(?:p|div|span|a|br|h[1-6]|article|section|li|ul|img|meta|script|table)\b[^>]*>", re.I)


def looks_like_html(text: str) -> bool:
    """True when ``text`` is an HTML document or fragment rather than plain text: it has an
    ``<html>``/``<body>``/doctype marker, or at least three common block/inline tags."""
    head = text[:20000]
    if _HTML_MARKERS.search(head):
        return True
    return len(_HTML_TAG.findall(head, 0, 20000)) >= 3


_TAGS = re.compile(r"<script\b.*?</script>|<style\b.*?</style>|<[^>]*>", re.I | re.S)
_BLOCK_END = re.compile(r"</(?:p|div|h[1-6]|li|article|section|tr)>|<br\s*/?>", re.I)


def _html_to_text(page: str) -> str:
    """Main text of an HTML page, one paragraph per line. trafilatura does the work; if it finds
    nothing (a fragment, a broken page) the tags are stripped instead so no text is lost."""
    extracted: str | None = None
    try:
        import trafilatura

        extracted = trafilatura.extract(
            page, include_comments=False, include_tables=False, favor_recall=True, output_format="txt"
        )
    except Exception:  # noqa: BLE001 - a parser failure on hostile input must not kill the stage
        extracted = None
    if not extracted or not extracted.strip():
        extracted = html.unescape(_TAGS.sub(" ", _BLOCK_END.sub("\n", page)))
    # trafilatura writes one paragraph per line: make each its own paragraph so that the
    # hard-wrap joiner below does not merge paragraphs of similar length.
    return "\n\n".join(line for line in extracted.split("\n") if line.strip())


# --------------------------------------------------------------------------- furniture

_MONTH = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
_WEEKDAY = r"(?:mon|tues|wednes|thurs|fri|satur|sun)day"

#: Whole-line patterns (matched case-insensitively against a stripped line) of page furniture.
#: Each is anchored so that it cannot match a sentence.
FURNITURE_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.I)
    for p in (
        # weather widget: "6 C", "-3°F", "21 °C"
        r"-?\d{1,3}\s*°?\s*[cf]",
        # a date or a time alone on a line, as captured with the page: "Saturday, January 22, 2022"
        rf"(?:{_WEEKDAY},?\s*)?{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}(?:\s+\d{{1,2}}:\d{{2}}.*)?",
        rf"(?:{_WEEKDAY},?\s*)?\d{{1,2}}\s+{_MONTH},?\s+\d{{4}}(?:\s+\d{{1,2}}:\d{{2}}.*)?",
        r"\d{4}-\d{2}-\d{2}(?:[ t]\d{2}:\d{2}.*)?",
        rf"(?:last )?(?:updated|published|posted)(?:\s*on)?\s*:?\s*(?:{_WEEKDAY},?\s*)?"
        rf"(?:{_MONTH}\s+\d{{1,2}},?\s+\d{{4}}|\d{{1,2}}\s+{_MONTH},?\s+\d{{4}}|\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}}/\d{{1,2}}/\d{{2,4}}).{{0,25}}",
        # breadcrumbs: "Home » News » World", "HomeAll Articles...": "Home" glued to a capital
        r"home\s*[»›>|/].*",
        r"(?-i:Home[A-Z][a-z]).*",
        # advertising
        r"[-–—•*\s]*(?:advertis(?:e)?ment|advertisment|sponsored(?: content)?|ad)[-–—•*\s]*",
        # widget and navigation labels
        r"(?:most (?:popular|read|viewed)|recent (?:comments|posts)|related (?:articles|stories|posts|content)"
        r"|accessibility links|skip to (?:main )?content|breaking news|latest (?:news|stories)|trending(?: now)?"
        r"|read more|share (?:this )?(?:article|story)?|follow us.*|sign up.*|subscribe.*|newsletter"
        r"|comments?|leave a (?:comment|reply)|you may also like|more from .{0,30}|top stories"
        r"|share|tweet|print|email|whatsapp|facebook|twitter|linkedin|copy link|menu|search|close)\s*:?",
        # "Powered By : XYZScripts.com", "WP2Social Auto Publish Powered By ..."
        r".{0,40}\bpowered by\b.{0,40}",
        # agency trust boilerplate: "Our Standards: The Thomson Reuters Trust Principles."
        r"our standards\s*:.*",
        r"(?:copyright\s*)?©.{0,80}|copyright\s+\d{4}.{0,80}|.{0,80}all rights reserved\.?",
        # PDF running heads and folios: "Page 10 - MEOG Week 26", "P. 10", "P10 www. NEWSBASE .com ..."
        r"(?:page|p\.?)\s?\d{1,4}(?:\s*(?:of\s+\d+|[-–|•:]).{0,60}|\s+www\..{0,60}|\s+\S+\s+week\s+\d+.{0,40})?",
        r"\d{1,4}",
        r".{0,30}\bwww\s?\.\s?\S+\s?\.\s?(?:com|org|net|co\.uk).{0,40}",
    )
)

_FURNITURE = re.compile("|".join(f"(?:{p.pattern})" for p in FURNITURE_PATTERNS), re.I)
_SIZE_TOKENS = frozenset({"xs", "s", "sm", "m", "md", "l", "lg", "xl", "xxl", "a-", "a+", "a"})
_STRAY_LETTER = re.compile(r"(?<!\S)(?![aAI](?!\S))[^\W\d_](?!\S)")
_GLUED_WORDS = re.compile(r"[a-z]{3}[A-Z][a-z]")
_TERMINAL = re.compile(r"[.!?…][\"'”’)\]]*$")


def _is_furniture_line(line: str) -> bool:
    """True for a line that is page chrome rather than article text (see the module docstring)."""
    if not line or len(line) > 160:
        return False
    if _FURNITURE.fullmatch(line):
        return True
    letters = sum(map(str.isalpha, line))
    visible = len(line) - line.count(" ")
    if visible and letters / visible < 0.3 and not re.search(r"\d[\d,.]*\s*(?:%|percent)", line):
        return True  # rules, bullets, pipes, lone numbers and dates in odd formats
    if len(line) <= 40 and len(_STRAY_LETTER.findall(line)) >= 2:
        return True  # letter-spaced or broken small-caps running head: "MEOG Poli C y MEOG"
    # menu-like concatenation: several words glued without spaces and no sentence ending
    return len(_GLUED_WORDS.findall(line)) >= 2 and not _TERMINAL.search(line)


def _is_size_token(line: str) -> bool:
    return bool(line) and all(tok.lower() in _SIZE_TOKENS for tok in line.split())


def _word_count(line: str) -> int:
    return len(line.split())


def _strip_furniture(lines: list[str]) -> list[str]:
    """Drop furniture lines. A dropped line becomes a blank line so that it still separates the
    text on either side of it."""
    out = list(lines)
    n = len(out)
    # Short lines repeated three times or more are running heads/footers or widget labels.
    counts = Counter(line for line in out if line and len(line) <= 60 and not _TERMINAL.search(line))
    repeated = {line for line, c in counts.items() if c >= 3}
    prev = ""
    for i, line in enumerate(out):
        if not line:
            continue
        if line in repeated or _is_furniture_line(line) or line == prev:
            out[i] = ""  # the same line again right after itself (past blanks): a doubled caption
        else:
            prev = line
    # Runs of size-picker tokens ("XS", "SM", "MD", "LG", one per line or on one line).
    i = 0
    while i < n:
        j = i
        while j < n and _is_size_token(out[j]):
            j += 1
        if j - i >= 2 or (j - i == 1 and len(out[i].split()) >= 3):
            for k in range(i, j):
                out[k] = ""
        i = max(j, i + 1)
    return out


def _drop_trailing_labels(paragraphs: list[str]) -> list[str]:
    """After the last real paragraph (8+ words ending a sentence), short paragraphs with no
    sentence ending ("Related Topics", "World News") are page chrome."""
    last_real = max(
        (k for k, par in enumerate(paragraphs) if _word_count(par) >= 8 and _TERMINAL.search(par)),
        default=None,
    )
    if last_real is None:
        return paragraphs
    tail = [p for p in paragraphs[last_real + 1 :] if _word_count(p) > 4 or _TERMINAL.search(p)]
    return paragraphs[: last_real + 1] + tail


# --------------------------------------------------------------------------- hyphenation

#: Second pieces that are suffixes: "govern-ment", "powerless-ness" are one word.
_SUFFIXES = frozenset(
    "ment ments tion tions sion sions ness less ing ings ed ered ering ened ening ly ity ities ance "
    "ances ence ences ant ants ent ents al ally ary ory ive ives ous able ably ible ful ship ships ism "
    "isms ist ists ise ised ize ized ization isation er ers est ate ated ates ation ations ure ures ian "
    "ians ic ical ics age ages dom hood ward wards ee ees ette ty ry cy ern erns ish".split()
)
#: First pieces that usually start a hyphenated compound ("then-prime", "well-known", "two-thirds").
#: Only words that seldom open an ordinary word broken by a typesetter (no "pro", "ex", "so").
_HYPHEN_HEADS = frozenset(
    "self well then anti non cross half long short full high low two three four five six seven eight "
    "nine twenty thirty forty fifty hundred first second third much little best worst large small old "
    "new right left north south east west".split()
)
#: Second pieces that usually end a hyphenated compound ("Iran-backed", "U.S.-led").
_HYPHEN_TAILS = frozenset(
    "backed led based born run owned linked funded related style wide free year years old term level "
    "scale time made held controlled affiliated aligned allied leaning friendly speaking ranking "
    "sponsored supported armed trained inspired dominated oriented minded like known called".split()
)
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
_COMPOUND = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)+")
_HYPHEN_END = re.compile(r"(\S*?)([^\W\d_]+)-$")  # "al-Ka-" -> ("al-", "Ka")
_LEAD_WORD = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True, slots=True)
class _Lexicon:
    """The document's own words, and the word pairs that stand next to each other on one line:
    evidence for repairing hyphenation and for reading columns."""

    words: frozenset[str]
    bigrams: dict[tuple[str, str], int]

    @classmethod
    def of(cls, lines: list[str]) -> _Lexicon:
        words: set[str] = set()
        bigrams: Counter[tuple[str, str]] = Counter()
        for line in lines:
            toks = [w.lower() for w in _WORD.findall(line)]
            words.update(toks)
            words.update(w.lower() for w in _COMPOUND.findall(line))
            bigrams.update(zip(toks, toks[1:]))
        return cls(frozenset(words), dict(bigrams))


_NO_LEXICON = _Lexicon(frozenset(), {})


def _join_hyphenated(first: str, second: str, lex: _Lexicon) -> str:
    """Join a line ending in ``first`` (which ends with "-") to a line starting with ``second``.

    The rule, in order: keep the hyphen when the second piece does not start with a lowercase
    letter ("al-" + "Kadhimi", "anti-" + "US") or the first piece is not plain letters ("U.S.-" +
    "led"); otherwise trust the document itself (the joined word, or the hyphenated form, seen
    elsewhere in the text); then join when the second piece is a suffix ("govern-ment"); keep the
    hyphen for typical compound heads ("then-prime", "well-known") and tails ("Iran-backed");
    otherwise join as one word ("mili-tia", "Washing-ton", "al-Ka-dhimi").
    """
    stem = first[:-1]
    m = _HYPHEN_END.search(first)
    lead = _LEAD_WORD.match(second)
    if m is None or lead is None or not second[0].islower():
        return first + second
    head, tail = m.group(2), lead.group(0)
    h, t = head.lower(), tail.lower()
    if (h + t) in lex.words:
        return stem + second
    if f"{h}-{t}" in lex.words or t in _HYPHEN_TAILS:
        return first + second
    if t in _SUFFIXES:
        return stem + second
    if h in _HYPHEN_HEADS:
        return first + second
    return stem + second


# --------------------------------------------------------------------------- paragraphs

_ENDS_HYPHEN = re.compile(r"[^\W\d_]-$")
_LINE_END_HYPHEN = re.compile(r"[^\s\-–—]-$")  # "mili-", "U.S.-", but not a dash " -"
_OPEN_QUOTE = "\"'“‘(["


def _starts_lower(s: str) -> bool:
    return bool(s) and s[0].islower()


def _paragraphs_of_block(
    block: list[str | None], lex: _Lexicon, width: float | None = None
) -> list[str]:
    """Join the lines of one blank-line-free block into paragraphs.

    Two lines are joined when the first ends with a hyphen glued to a word and the second starts
    with a letter or digit (:func:`_join_hyphenated` decides whether the hyphen stays), when the
    second continues a sentence (lowercase start, no sentence end before it), or when the block
    is hard-wrapped (several lines near its full width, at most 130 characters) and the first line
    is a full one. A hard-wrapped line that ends a sentence well short of the width ends a
    paragraph. ``None`` entries are soft breaks (a gap in a PDF column): they end a paragraph
    unless the text plainly continues across them. ``width`` overrides the measured line width.
    """
    lines = [ln for ln in block if ln is None or ln]
    real = [ln for ln in lines if ln]
    if not real:
        return []
    if width is None:
        longest = max(len(ln) for ln in real)
        full = [ln for ln in real if len(ln) >= 0.7 * longest]
        wrapped = 40 <= longest <= 130 and len(full) >= 2 and len(real) >= 2
        width = float(sorted(len(ln) for ln in full)[len(full) // 2]) if wrapped else None
    paras: list[str] = []
    cur = ""
    last_len = 0  # length of the physical line that ``cur`` ends with
    soft_gap = False
    for ln in lines:
        if ln is None:
            soft_gap = True
            continue
        if not cur:
            cur, last_len, soft_gap = ln, len(ln), False
            continue
        if _LINE_END_HYPHEN.search(cur) and ln[0].isalnum():
            cur = _join_hyphenated(cur, ln, lex)
        elif _starts_lower(ln) and not _TERMINAL.search(cur):
            cur = f"{cur} {ln}"
        elif (
            not soft_gap
            and width is not None
            and last_len >= 0.7 * width
            and (not _TERMINAL.search(cur) or last_len >= 0.85 * width)
            and not cur.endswith(":")
        ):
            cur = f"{cur} {ln}"
        else:
            paras.append(cur)
            cur = ln
        last_len = len(ln)
        soft_gap = False
    if cur:
        paras.append(cur)
    return paras


# --------------------------------------------------------------------------- two columns

_MIN_WIDE = 60  # a physical line of a two-column page holds two ~45-character column lines
_MIN_REGION_LINES = 8
_MAX_REGION_LINES = 400


# A little English grammar for telling which column a word at a column boundary belongs to: a
# closed-class word is hardly ever followed by these classes ("a of", "troops' of", "in at").
_DET = frozenset("a an the his its their our your my every no".split())
_PREP = frozenset(
    "of in on at to for with by from into onto over under after before during against between "
    "through without within among via upon along across around behind beyond near toward towards "
    "amid despite per".split()
)
_SENTENCE_ADV = frozenset(
    "meanwhile however moreover furthermore nevertheless nonetheless therefore meantime thus hence".split()
)
_CONJ = frozenset("and or but nor".split())
_AUX = frozenset("is are was were be been being has have had will would can could should must".split())
_PRON = frozenset("he she it they we i you".split())
_BAD_NEXT: dict[frozenset[str], frozenset[str]] = {
    _DET: _DET | _PREP | _CONJ | _AUX | _PRON | _SENTENCE_ADV,
    _PREP: _PREP | _CONJ | _AUX | _SENTENCE_ADV,
    _CONJ: _CONJ,
}
_CLOSED_CLASS = _DET | _PREP | _CONJ | _AUX | _PRON
_POSSESSIVE = re.compile(r"[^\W\d_]['’]s?$")
_EDGE_PUNCT = "\"'“”‘’()[],;:.!?…"


def _first_word(s: str) -> str:
    return s.split(" ", 1)[0].strip(_EDGE_PUNCT).lower()


def _last_word(s: str) -> str:
    return s.rsplit(" ", 1)[-1].lower()


_NOTHING: frozenset[str] = frozenset()
_AFTER_POSSESSIVE = _PREP | _CONJ | _AUX


def _bad_followers(prev_word: str) -> frozenset[str]:
    """The words that hardly ever follow ``prev_word`` with no punctuation between them."""
    bare = prev_word.strip(_EDGE_PUNCT)
    if bare != prev_word and not prev_word.endswith(("’", "'")):
        return _NOTHING  # punctuation between them: anything may follow
    for cls, bad in _BAD_NEXT.items():
        if bare in cls:
            return bad
    return _AFTER_POSSESSIVE if _POSSESSIVE.search(prev_word) else _NOTHING


def _bad_pair(prev_word: str, next_word: str) -> bool:
    """True for two words that hardly ever stand in a row with no punctuation between them."""
    return next_word in _bad_followers(prev_word)


_INNER_HYPHEN = re.compile(r"[^\W\d_]- (?!(?:and|or|to|nor)\b)\S")
_INNER_STOP = re.compile(r"(?<![A-Z])(?!Mr|Ms|Dr|St|No)[^\W\d_]{2}[.!?] [a-z]")


class _Part:
    """One column's share of a physical line, with what the scorer needs precomputed."""

    __slots__ = ("text", "n", "first", "first_word", "last_word", "last_bare", "bad_next", "lead",
                 "hyphen_head", "terminal", "heading", "inner_cost")

    def __init__(self, text: str) -> None:
        self.text = text
        self.n = len(text)
        self.first = text[:1]
        self.first_word = _first_word(text) if text else ""
        self.last_word = _last_word(text) if text else ""
        self.last_bare = self.last_word.strip(_EDGE_PUNCT)
        self.bad_next = _bad_followers(self.last_word)
        lead = _LEAD_WORD.match(text)
        self.lead = lead.group(0) if lead else ""
        m = _HYPHEN_END.search(text) if text.endswith("-") else None
        self.hyphen_head = m.group(2) if m and _ENDS_HYPHEN.search(text) else ""
        self.terminal = bool(text) and _TERMINAL.search(text) is not None
        self.heading = bool(text) and _word_count(text) <= 6 and text[0].isupper() and not self.terminal
        # Inside one column line a "frag- ment" break or a sentence end followed by lowercase means
        # the split is in the wrong place ("pre- and post-war" stays cheap).
        self.inner_cost = 2.0 * len(_INNER_HYPHEN.findall(text)) + 1.5 * len(_INNER_STOP.findall(text))


_EMPTY = _Part("")


def _continuity(prev: _Part, cur: _Part, lex: _Lexicon) -> float:
    """How well ``cur`` reads as the next line of a column that so far ended with ``prev``."""
    if not prev.n or not cur.n:
        return 0.0
    first = cur.first
    if prev.hyphen_head:
        if not first.islower() or not cur.lead:
            return -2.0
        if (prev.hyphen_head + cur.lead).lower() in lex.words:
            return 4.5
        # The rest of a broken word is seldom a word like "and" or "the" on its own.
        return 2.0 if cur.lead in _CLOSED_CLASS else 3.0
    if prev.terminal:
        if first.isupper() or first.isdigit() or first in _OPEN_QUOTE:
            return 1.0
        return -2.0 if first.islower() else 0.0
    # Mid-sentence: a lowercase or a capitalised word (a name) may follow. The little grammar
    # and the word pairs the document has elsewhere ("Prime" + "Minister") decide.
    score = -0.5 if cur.first_word in prev.bad_next else 1.0
    if (prev.last_bare, cur.first_word) in lex.bigrams:
        score += 1.0
    return score


def _part_penalty(part: _Part, width: float, tol: float) -> float:
    """Cost of ``part`` as one physical line of a column ``width`` characters wide (about)."""
    n = part.n
    cost = part.inner_cost + 0.02 * min(abs(n - width), tol) ** 2  # the usual width breaks ties
    if n > width + tol:
        return cost + 0.5 * (n - width - tol)
    if n >= width - tol:
        return cost
    short = width - tol - n
    if part.terminal:
        return cost + 0.05 * short  # the last line of a paragraph
    return cost + (0.02 if part.heading else 0.2) * short  # a sub-heading may be short


def _candidates(line: str, width: float, tol: float) -> list[int]:
    """Split positions worth trying: spaces that leave a left part of about the column width, a
    shorter left part that ends a paragraph or could be a sub-heading, and the two ends (the whole
    line in one column, the other column having a gap)."""
    lo, hi = width - tol - 3, width + tol + 3
    cands = [0]
    for i, ch in enumerate(line):
        if ch != " " or i < 3:
            continue
        if i > hi:
            break
        if i >= lo or _TERMINAL.search(line, 0, i) or (i <= 32 and _HEADING_START.fullmatch(line, 0, i)):
            cands.append(i)
    cands.append(len(line))
    return cands


_HEADING_START = re.compile(r"[A-Z][^,;:.!?]*")


def _solve(
    lines: list[str], widths: tuple[float, float], lex: _Lexicon
) -> tuple[list[tuple[str, str]], float]:
    """Best split of every line into (left, right) by dynamic programming over split positions.
    Scores reward column widths near ``widths`` and column text that reads on from the line
    above (hyphenated fragments continued in lowercase, sentences continued, sentence ends
    followed by capitals, no impossible word pairs). A column with a gap on a line is compared
    with its last non-empty line on the best path (an approximation that keeps the DP linear)."""
    wl, wr = widths
    tol = max(5.0, 0.15 * max(wl, wr))
    cache: dict[str, _Part] = {"": _EMPTY}

    def part(text: str) -> _Part:
        p = cache.get(text)
        if p is None:
            p = cache[text] = _Part(text)
        return p

    # Per line: candidate (split, left, right, own cost); per state: score, back pointer, tails.
    prev_states: list[tuple[float, _Part, _Part]] = [(0.0, _EMPTY, _EMPTY)]
    backs: list[list[int]] = []
    options: list[list[tuple[int, _Part, _Part]]] = []
    for line in lines:
        opts: list[tuple[int, _Part, _Part]] = []
        own: list[float] = []
        for split in _candidates(line, wl, tol):
            left, right = part(line[:split].strip()), part(line[split:].strip())
            cost = 0.0
            if left.n:
                cost += _part_penalty(left, wl, tol)
            if right.n:
                cost += _part_penalty(right, wr, tol)
            if not left.n or not right.n:
                cost += 1.5 if (left.n or right.n) else 0.0
            else:
                junction = (left.last_word, right.first_word)
                if lex.bigrams.get((junction[0].strip(_EDGE_PUNCT), junction[1]), 0) >= 2:
                    cost += 1.0  # the split would tear apart a word pair seen elsewhere
                elif _bad_pair(*junction):
                    cost -= 1.5  # two words that cannot follow each other: the columns meet here
            opts.append((split, left, right))
            own.append(cost)
        states: list[tuple[float, _Part, _Part]] = []
        back: list[int] = []
        for (_, left, right), cost in zip(opts, own, strict=True):
            best, best_k = -1e18, 0
            for k, (score, ltail, rtail) in enumerate(prev_states):
                sc = score
                if left.n:
                    sc += _continuity(ltail, left, lex)
                if right.n:
                    sc += _continuity(rtail, right, lex)
                if sc > best:
                    best, best_k = sc, k
            _, ltail, rtail = prev_states[best_k]
            states.append((best - cost, left if left.n else ltail, right if right.n else rtail))
            back.append(best_k)
        options.append(opts)
        backs.append(back)
        prev_states = states
    k = max(range(len(prev_states)), key=lambda j: prev_states[j][0])
    total = prev_states[k][0]
    result: list[tuple[str, str]] = [("", "")] * len(lines)
    for i in range(len(lines) - 1, -1, -1):
        _, left, right = options[i][k]
        result[i] = (left.text, right.text)
        k = backs[i][k]
    return result, total


def _single_column_score(lines: list[str], lex: _Lexicon) -> float:
    parts = [_Part(ln) for ln in lines]
    return sum(_continuity(a, b, lex) for a, b in zip(parts, parts[1:]))


def _find_regions(lines: list[str]) -> list[tuple[int, int]]:
    """Candidate two-column regions [start, end): runs of wide lines of similar length, allowing a
    single blank line between runs, trimmed of leading narrow lines (a title above the columns)."""
    regions: list[tuple[int, int]] = []
    n = len(lines)
    i = 0
    while i < n:
        if len(lines[i]) < _MIN_WIDE:
            i += 1
            continue
        start = i
        end = i
        while end < n:
            if lines[end]:
                end += 1
            elif end + 1 < n and len(lines[end + 1]) >= _MIN_WIDE and end > start:
                end += 1  # one blank line inside the columns (a heading gap)
            else:
                break
        wide = [len(ln) for ln in lines[start:end] if len(ln) >= _MIN_WIDE]
        if len(wide) >= _MIN_REGION_LINES:
            med = sorted(wide)[len(wide) // 2]
            body = [ln for ln in lines[start:end] if ln]
            in_band = sum(0.75 * med <= len(ln) <= 1.2 * med for ln in body)
            blanks = (end - start) - len(body)
            if med <= 160 and in_band >= 0.7 * len(body) and blanks <= max(1, len(body) // 10):
                regions.append((start, end))
        i = max(end, i + 1)
    return regions


_MID_HYPHEN = re.compile(r"[^\W\d_]{2}- [a-z]")


def _deinterleave(region: list[str], lex: _Lexicon) -> list[str] | None:
    """Rebuild a two-column region as left-column paragraphs then right-column paragraphs, or
    return None when the region does not read better as two columns than as one.

    Evidence needed: at least two places where a column line visibly ends in the middle of a
    physical line ("frag- ment" or "end. lowercase"), the column reading confirming at least
    two of them, and the column reading scoring better than reading the lines whole."""
    lines = [ln for ln in region if ln]
    if len(lines) > _MAX_REGION_LINES:
        return None  # far longer than any page: not a page of columns, and the DP cost is linear
    junctions = sum(len(_MID_HYPHEN.findall(ln)) + len(_INNER_STOP.findall(ln)) for ln in lines)
    if junctions < 2:
        return None  # cheap gate: glued columns show "frag- ment" or "end. next" mid-line
    wide = sorted(len(ln) for ln in lines if len(ln) >= _MIN_WIDE)
    width = (wide[len(wide) // 2] - 1) / 2
    parts, score = _solve(lines, (width, width), lex)
    # The two columns rarely hold the same number of characters per line: measure each on the
    # first solution and solve again.
    both = [(len(a), len(b)) for a, b in parts if a and b]
    if len(both) >= _MIN_REGION_LINES:
        wl = float(sorted(a for a, _ in both)[len(both) // 2])
        wr = float(sorted(b for _, b in both)[len(both) // 2])
        parts, score = _solve(lines, (wl, wr), lex)
        width = (wl + wr) / 2
    # Confirmed junctions: a left part that ends a word fragment or a sentence, continued as such
    # by the next left part, while the same physical line goes on with the right column.
    confirmed = 0
    last_left = ""
    for left, right in parts:
        if left and last_left and _ENDS_HYPHEN.search(last_left) and _starts_lower(left):
            confirmed += 1
        if left and right and _TERMINAL.search(left) and _starts_lower(right):
            confirmed += 1
        last_left = left or last_left
    baseline = _single_column_score(lines, lex)
    if confirmed < 2 or score <= baseline:
        return None
    left_col: list[str | None] = []
    right_col: list[str | None] = []
    for left, right in parts:
        left_col.append(left or None)
        right_col.append(right or None)
    column_text = [*left_col, None, *right_col]
    return _paragraphs_of_block(column_text, lex, width=width)


# --------------------------------------------------------------------------- case artefacts

_CASE_EXCEPTIONS = frozenset(
    "pH iOS iPadOS macOS tvOS watchOS mRNA tRNA rRNA miRNA siRNA mAb kW kV kB mA mV dB eV nM mM "
    "iPS qPCR pKa cDNA vCPU eSIM".split()
)
_SMALLCAPS_ACRONYM = re.compile(r"\b[a-z][A-Z]{1,4}\b")
_SMALLCAPS_WORD = re.compile(r"\b([a-z]{2,}[A-Z]+)\b((?: (?:IN|ON|AT|THE|AN?|OF|FOR|BY|AS|TO|FROM|WITH|AND)\b)*)")
#: Proper names whose first word small caps turned lowercase ("the united States").
_LOWERED_NAMES = re.compile(
    r"\b(?=[unsh])(?:(united)(?= (?:States|Kingdom|Nations|Arab Emirates)\b)|\b(new)(?= (?:York|Zealand|Delhi|Jersey|Mexico)\b)"
    r"|\b(saudi)(?= Arabia\b)|\b(hong)(?= Kong\b)|\b(sri)(?= Lanka\b)"
    r"|(south|north)(?= (?:Korea|Sudan)\b))"
)


_CAMEL = re.compile(r"[a-z][A-Z]")
_LOWERED_HINTS = ("united ", "new ", "saudi ", "hong ", "sri ", "south ", "north ")


def _fix_names(text: str) -> str:
    if not any(hint in text for hint in _LOWERED_HINTS):
        return text
    return _LOWERED_NAMES.sub(lambda m: m.group(0).capitalize(), text)


def _fix_case(par: str) -> str:
    if _CAMEL.search(par) is None:
        return _fix_names(par)

    def acronym(m: re.Match[str]) -> str:
        word = m.group(0)
        return word if word in _CASE_EXCEPTIONS else word.upper()

    def smallcaps_word(m: re.Match[str]) -> str:
        word, lead_in = m.group(1), m.group(2)
        if word in _CASE_EXCEPTIONS:
            return m.group(0)
        # All-caps function words right after it belong to the same small-caps lead-in.
        return word.capitalize() + " ".join(w.capitalize() for w in lead_in.split(" "))

    par = _SMALLCAPS_ACRONYM.sub(acronym, par)
    par = _SMALLCAPS_WORD.sub(smallcaps_word, par)
    return _fix_names(par)


# --------------------------------------------------------------------------- entry points


def normalise(text: str) -> str:
    """Clean article text: main text only, page furniture dropped, two-column PDF text
    de-interleaved, hyphenation and small-caps artefacts repaired, paragraphs separated by
    ``"\\n\\n"``. Deterministic; never raises on a ``str``; idempotent on ordinary articles."""
    try:
        return _normalise(text)
    except Exception:  # noqa: BLE001 - the contract is "never raises"; fall back to whitespace only
        lines = _SPACES.sub(" ", str(text)).split("\n")
        return "\n\n".join(ln.strip() for ln in lines if ln.strip())


def _normalise(text: str) -> str:
    if looks_like_html(text):
        text = _html_to_text(text)
    # Case artefacts are repaired first: the column reader must see "US", not "uS".
    text = _fix_case(_clean_chars(text))
    lines = _strip_furniture(text.split("\n"))
    regions = _find_regions(lines)
    # The document's own vocabulary is only needed to repair hyphenation and to read columns.
    needs_lex = bool(regions) or any(_LINE_END_HYPHEN.search(line) for line in lines)
    lex = _Lexicon.of(lines) if needs_lex else _NO_LEXICON
    paragraphs: list[str] = []
    pos = 0
    for start, end in regions:
        rebuilt = _deinterleave(lines[start:end], lex)
        if rebuilt is None:
            continue
        paragraphs.extend(_paragraphs_of_lines(lines[pos:start], lex))
        paragraphs.extend(rebuilt)
        pos = end
    paragraphs.extend(_paragraphs_of_lines(lines[pos:], lex))
    # Lines joined into one paragraph can make furniture or a repeat that no single line was.
    kept: list[str] = []
    for par in paragraphs:
        if not _is_furniture_line(par) and (not kept or par != kept[-1]):
            kept.append(par)
    paragraphs = _drop_trailing_labels(kept)
    # Joining lines can bring a lowered name back together ("united" + "States").
    out = "\n\n".join(paragraphs)
    return _fix_names(out)


def _paragraphs_of_lines(lines: list[str], lex: _Lexicon) -> list[str]:
    paras: list[str] = []
    block: list[str | None] = []
    for line in [*lines, ""]:
        if line:
            block.append(line)
        elif block:
            paras.extend(_paragraphs_of_block(block, lex))
            block = []
    return paras


_HEADLINE_MAX_WORDS = 25


def _looks_like_headline(par: str) -> bool:
    words = par.split()
    return (
        2 <= len(words) <= _HEADLINE_MAX_WORDS
        and not par.endswith(".")
        and not par.endswith((":", ",", ";", "-", "–", "—"))
        and any(w[:1].isupper() for w in words)
        and not _is_furniture_line(par)
    )


def _same_text(a: str, b: str) -> bool:
    def key(s: str) -> str:
        return " ".join(re.sub(r"[^\w\s]", " ", s.casefold()).split())

    return key(a) == key(b)


def split_title(clean_text: str, given_title: str | None = None) -> tuple[str, str]:
    """Split normalised text into ``(title, body)``.

    With ``given_title`` the title is that (whitespace-collapsed), and the first of the leading
    three paragraphs that repeats it (ignoring case and punctuation) is dropped from the body. Otherwise the title is the
    first paragraph, among the leading short ones, that looks like a headline (2-25 words, no
    final period, not furniture); paragraphs skipped before it stay in the body. No headline
    found: ``("", clean_text)``.
    """
    paras = [p.strip() for p in clean_text.split("\n\n") if p.strip()]
    if given_title is not None and given_title.strip():
        title = " ".join(given_title.split())
        for i, par in enumerate(paras[:3]):
            if _same_text(par, title):
                del paras[i]
                break
        return title, "\n\n".join(paras)
    for i, par in enumerate(paras[:4]):
        if _looks_like_headline(par):
            return par, "\n\n".join(paras[:i] + paras[i + 1 :])
        if _word_count(par) > _HEADLINE_MAX_WORDS or (_word_count(par) >= 8 and _TERMINAL.search(par)):
            break  # the body has started
    return "", "\n\n".join(paras)
