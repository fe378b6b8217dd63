from __future__ import annotations

import json

import pytest

from pipeline.article import parse_article
from pipeline.sources import InputError, count_records, expand, iter_records

from ..conftest import SEEDS


def test_seed_folder_sends_each_article_once_with_metadata():
    files = expand([str(SEEDS)])
    records = list(iter_records(files))
    assert count_records(files) == len(records) == 5
    arts = [parse_article(r.raw) for r in records]
    assert sorted(a.id for a in arts) == sorted(p.stem for p in SEEDS.glob("*.txt"))
    by_id = {a.id: a for a in arts}
    assert by_id["001_3af53fcc4765ecfb"].source == "Reuters"
    # the text is exactly the file's text
    assert by_id["004_cca2940ed83aab76"].text == (SEEDS / "004_cca2940ed83aab76.txt").read_text()


def test_txt_file_and_jsonl_and_stdin(tmp_path):
    (tmp_path / "a.txt").write_text("Some article text.")
    (tmp_path / "b.jsonl").write_text(json.dumps({"text": "x"}) + "\n\n" + "{broken\n")
    recs = list(iter_records(expand([str(tmp_path / "a.txt"), str(tmp_path / "b.jsonl")])))
    assert [r.origin.rsplit("/", 1)[-1] for r in recs] == ["a.txt", "b.jsonl:1", "b.jsonl:3"]
    assert parse_article(recs[0].raw).id == "a"
    import io

    stdin_recs = list(iter_records(["-"], stdin=io.BytesIO(b'{"text": "y"}\n')))
    assert parse_article(stdin_recs[0].raw).text == "y"
    assert count_records(["-"]) is None


def test_unreadable_inputs(tmp_path):
    with pytest.raises(InputError):
        expand([str(tmp_path / "missing")])
    (tmp_path / "x.pdf").write_bytes(b"%PDF")
    with pytest.raises(InputError):
        expand([str(tmp_path / "x.pdf")])
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe")
    rec = next(iter_records(expand([str(tmp_path / "bad.txt")])))
    assert rec.error is not None and rec.error.reason == "invalid_utf8"
    (tmp_path / "m.jsonl").write_text(json.dumps({"text_file": "nope.txt"}) + "\n")
    rec = next(iter_records(expand([str(tmp_path / "m.jsonl")])))
    assert rec.error is not None and rec.error.reason == "bad_text_file"
