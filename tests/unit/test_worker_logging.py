"""The worker's faust Worker leaves the root logger at the configured level."""

from __future__ import annotations

import asyncio
import logging

import faust
import pytest

from pipeline.logs import logging_config
from pipeline.worker import service_worker_class


@pytest.fixture
def saved_root_logging():
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("level, expected", [("warn", logging.WARNING), ("info", logging.INFO), ("error", logging.ERROR)])
def test_the_root_logger_keeps_the_configured_level(saved_root_logging, level, expected):
    loop = asyncio.new_event_loop()
    try:
        app = faust.App("crosswire-test-logging", broker="memory://", loop=loop)
        worker = service_worker_class()(
            app, loglevel=level, quiet=True, logging_config=logging_config("text", level), redirect_stdouts=False, loop=loop
        )
        worker._setup_logging()  # what faust runs on start
        root = saved_root_logging
        assert root.level == expected
        # a debug call of a library builds no record (faust's spinner had set the root to DEBUG)
        assert not logging.getLogger("aiokafka.producer").isEnabledFor(logging.DEBUG)
        assert not any(type(h).__name__ == "SpinnerHandler" for h in root.handlers)
    finally:
        loop.close()
