from __future__ import annotations

import socket

import pytest

from pipeline.embedded import EmbeddedError, Stack, _port_open
from pipeline.search import make_client
from pipeline.settings import Settings


def test_stack_starts_on_loopback_and_stops_cleanly():
    with Stack.start() as st:
        assert _port_open(st.broker.port) and _port_open(st.search.port)
        env = st.env()
        s = Settings(kafka_bootstrap=env["CROSSWIRE_KAFKA_BOOTSTRAP"], es_url=env["CROSSWIRE_ES_URL"], es_compat="auto")
        assert make_client(s).info()["version"]["number"]
        procs = (st.broker.process, st.search.server.process)
    assert all(p.poll() is not None for p in procs)


def test_busy_port_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(EmbeddedError, match="already in use"):
            Stack.start(kafka_port=port)
