"""Crosswire: group a live news stream into stories and alert when sources contradict each other."""

__version__ = "0.1.0"
