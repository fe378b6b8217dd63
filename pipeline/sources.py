"""Read article records from files, folders and standard input.

Accepted inputs:

* ``.jsonl`` files: one JSON article per line. A line may name its text in a sibling file with
  ``"text_file": "name.txt"`` instead of ``"text"`` (that is how ``seeds/seeds.jsonl`` adds
  metadata to the seed articles without copying their text);
* ``.txt`` files: the whole file is the article text and the file name (without suffix) its id;
* folders: every ``.jsonl`` and ``.txt`` inside, sorted by name; a ``.txt`` that a ``.jsonl`` of the
  same folder refers to is not sent a second time;
* ``-``: JSON lines from standard input.

Each record comes out as JSON bytes ready for the articles topic, or with the error that stops it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .article import BadArticle


@dataclass(frozen=True)
class Record:
    origin: str  # "path:line" or "path", for error messages
    raw: bytes  # the JSON article as it goes on the topic (or the bad input as read)
    error: BadArticle | None = None  # set when reading already failed (unreadable file, bad reference)


class InputError(Exception):
    """A path that cannot be read at all (missing, unsupported type)."""


def _txt_record(path: Path) -> Record:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return Record(str(path), data, BadArticle("invalid_utf8", f"{path.name} is not valid UTF-8 at byte {e.start}"))
    return Record(str(path), json.dumps({"id": path.stem, "text": text}, ensure_ascii=False).encode("utf-8"))


def _jsonl_records(lines: Iterator[bytes], origin: str, base: Path | None) -> Iterator[Record]:
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{origin}:{n}"
        raw = line.rstrip(b"\r\n")
        if base is not None and b'"text_file"' in raw:
            try:
                obj = json.loads(raw)
                ref = base / obj.pop("text_file")
                obj["text"] = ref.read_text(encoding="utf-8")
                obj.setdefault("id", ref.stem)
                raw = json.dumps(obj, ensure_ascii=False).encode("utf-8")
            except (OSError, ValueError, TypeError, AttributeError, KeyError) as e:
                yield Record(where, raw, BadArticle("bad_text_file", f"cannot read the text_file it names: {e}"))
                continue
        yield Record(where, raw)


def _referenced_files(jsonl: Path) -> set[Path]:
    refs: set[Path] = set()
    with jsonl.open("rb") as fh:
        for line in fh:
            if b'"text_file"' in line:
                try:
                    refs.add((jsonl.parent / json.loads(line)["text_file"]).resolve())
                except (ValueError, KeyError, TypeError):
                    pass
    return refs


def expand(paths: Sequence[str]) -> list[Path | str]:
    """The files to read, in order (``"-"`` stays as is). Raises InputError for unusable paths."""
    out: list[Path | str] = []
    for p in paths:
        if p == "-":
            out.append(p)
            continue
        path = Path(p)
        if path.is_dir():
            files = sorted(f for f in path.iterdir() if f.suffix in (".jsonl", ".txt") and f.is_file())
            refs = set().union(*(_referenced_files(f) for f in files if f.suffix == ".jsonl")) if files else set()
            out.extend(f for f in files if f.suffix == ".jsonl" or f.resolve() not in refs)
        elif path.is_file():
            if path.suffix not in (".jsonl", ".json", ".txt", ".ndjson"):
                raise InputError(f"{p}: unsupported file type {path.suffix!r} (use .jsonl, .txt or a folder)")
            out.append(path)
        else:
            raise InputError(f"{p}: no such file or folder")
    return out


def count_records(files: Sequence[Path | str]) -> int | None:
    """How many records the files hold (None when reading standard input), for the progress bar."""
    total = 0
    for f in files:
        if f == "-":
            return None
        assert isinstance(f, Path)
        if f.suffix == ".txt":
            total += 1
        else:
            with f.open("rb") as fh:
                total += sum(1 for line in fh if line.strip())
    return total


def iter_records(files: Sequence[Path | str], stdin: BinaryIO | None = None) -> Iterator[Record]:
    """Yield every record of ``files`` (from :func:`expand`) in order."""
    for f in files:
        if f == "-":
            yield from _jsonl_records(iter(stdin or sys.stdin.buffer), "<stdin>", None)
        elif isinstance(f, Path) and f.suffix == ".txt":
            yield _txt_record(f)
        else:
            assert isinstance(f, Path)
            with f.open("rb") as fh:
                yield from _jsonl_records(iter(fh), str(f), f.parent)
