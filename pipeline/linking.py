"""Build the story linker from settings (and from persisted state after a restart)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .link import LinkerConfig, StoryLinker
from .settings import Settings


def linker_config(s: Settings) -> LinkerConfig:
    return LinkerConfig(threshold=s.link_threshold, horizon_days=s.link_horizon_days)


def make_linker(s: Settings, state: Iterable[Mapping] = ()) -> StoryLinker:
    """A linker with the configured threshold and horizon; ``state`` is what
    :meth:`StoryLinker.export_story` returned for each key (the worker's table values)."""
    return StoryLinker.restore(linker_config(s), state)
