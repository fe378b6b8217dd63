"""Secrets never leak, and logs are JSON from the first line.

Every secret is set to a sentinel containing ``SENTINEL``; each test drives one path where secrets
typically leak (help and config output, reprs, validation errors, library DEBUG logs of failed
connections to real local servers, HTTP error bodies, /metrics, the JSON formatter) and asserts
that neither the sentinel nor its wire forms (the webhook URL's path, base64 of a basic-auth pair
or of an ``id:key`` API key) appear.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.main import get_command
from typer.testing import CliRunner

from pipeline import logs
from pipeline.cli import app
from pipeline.embedded import free_port
from pipeline.settings import SECRET_FILE_FIELDS, Settings
from tests.conftest import REPO

KAFKA_PASSWORD = "kafka-SENTINEL-pass-7f3a9c"
ES_PASSWORD = "es-SENTINEL-pass-41b2e0"
ES_USER = "crosswire-es"
API_KEY_ID, API_KEY = "keyid-9d", "apikey-SENTINEL-99d1ab"
WEBHOOK_TOKEN = "hook-SENTINEL-c0ffee11"
WEBHOOK_PATH = f"/services/T0000/B0000/{WEBHOOK_TOKEN}"
BOT_TOKEN = "xoxb-SENTINEL-bot-5e5e5e"

B64_BASIC = base64.b64encode(f"{ES_USER}:{ES_PASSWORD}".encode()).decode()
B64_API_KEY = base64.b64encode(f"{API_KEY_ID}:{API_KEY}".encode()).decode()


def assert_clean(text: str, where: str = "") -> None:
    for needle in ("SENTINEL", B64_BASIC, B64_API_KEY, WEBHOOK_PATH, WEBHOOK_TOKEN):
        assert needle not in text, f"{needle!r} leaked in {where}:\n{text[:3000]}"


def records_text(records: list[logging.LogRecord]) -> str:
    """What any handler could print: message, exception and stack of every record."""
    fmt = logging.Formatter("%(levelname)s %(name)s %(message)s")
    return "\n".join(fmt.format(r) for r in records)


def secret_env(port: int = 9) -> dict[str, str]:
    return {
        "CROSSWIRE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "CROSSWIRE_KAFKA_SASL_MECHANISM": "PLAIN",
        "CROSSWIRE_KAFKA_SASL_USERNAME": "crosswire",
        "CROSSWIRE_KAFKA_SASL_PASSWORD": KAFKA_PASSWORD,
        "CROSSWIRE_ES_USERNAME": ES_USER,
        "CROSSWIRE_ES_PASSWORD": ES_PASSWORD,
        "CROSSWIRE_ES_API_KEY": f"{API_KEY_ID}:{API_KEY}",
        "CROSSWIRE_SLACK_WEBHOOK_URL": f"http://127.0.0.1:{port}{WEBHOOK_PATH}",
        "CROSSWIRE_SLACK_BOT_TOKEN": BOT_TOKEN,
        "CROSSWIRE_SLACK_CHANNEL": "C0TEST",
        "CROSSWIRE_SLACK_ALLOWED_HOSTS": '["127.0.0.1"]',
    }


@pytest.fixture()
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for name in list(os.environ):
        if name.upper().startswith("CROSSWIRE_"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture()
def env(clean_env: pytest.MonkeyPatch) -> dict[str, str]:
    values = secret_env()
    for k, v in values.items():
        clean_env.setenv(k, v)
    return values


def closed_port() -> int:
    return free_port()  # bound and released: nothing listens there


# ----------------------------------------------------------------------------- CLI and settings


def _commands() -> list[str]:
    return sorted(get_command(app).commands)  # type: ignore[attr-defined]


def test_help_of_every_command_and_config_hide_secrets(env: dict[str, str]) -> None:
    runner = CliRunner()
    outputs = [runner.invoke(app, ["--help"]).output]
    for name in _commands():
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        outputs.append(result.output)
    config = runner.invoke(app, ["config"], env={"COLUMNS": "400"})
    assert config.exit_code == 0, config.output
    assert config.output.count("(set, hidden)") >= 5  # the five secrets are reported as set
    assert "CROSSWIRE_ES_PASSWORD_FILE" in config.output and "CROSSWIRE_SECRETS_DIR" in config.output
    for out in outputs + [config.output]:
        assert_clean(out, "CLI output")


def test_settings_reprs_and_dumps_hide_secrets(env: dict[str, str]) -> None:
    s = Settings()
    assert s.kafka_sasl_password is not None and s.kafka_sasl_password.get_secret_value() == KAFKA_PASSWORD
    for text in (repr(s), str(s), s.model_dump_json(), json.dumps(s.model_dump(mode="json")), str(s.model_dump())):
        assert_clean(text, "settings dump")


def test_validation_errors_never_echo_inputs(env: dict[str, str], clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("CROSSWIRE_ALERT_PENDING_TIMEOUT_S", "5")  # invalid: the model validator fails
    with pytest.raises(ValidationError) as info:
        Settings()
    assert "alert_pending_timeout_s" in str(info.value)
    assert_clean(str(info.value) + repr(info.value) + json.dumps(info.value.errors(include_input=False), default=str), "ValidationError")
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 2
    assert_clean(result.output, "invalid-configuration message")


# ----------------------------------------------------------------------------------- secret files


def test_secrets_from_file_variables_and_secrets_dir(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    (files / "es-password").write_text(ES_PASSWORD + "\n")  # `echo` adds a newline; it is stripped
    (files / "token").write_text(f"  {BOT_TOKEN}\r\n")
    folder = tmp_path / "run-secrets"
    folder.mkdir()
    (folder / "CROSSWIRE_KAFKA_SASL_PASSWORD").write_text(KAFKA_PASSWORD)
    (folder / "crosswire_es_api_key").write_text(f"{API_KEY_ID}:{API_KEY}")  # case does not matter
    clean_env.setenv("CROSSWIRE_ES_USERNAME", ES_USER)
    clean_env.setenv("CROSSWIRE_ES_PASSWORD_FILE", str(files / "es-password"))
    clean_env.setenv("CROSSWIRE_SLACK_BOT_TOKEN_FILE", str(files / "token"))
    clean_env.setenv("CROSSWIRE_SECRETS_DIR", str(folder))
    s = Settings()
    assert s.es_password is not None and s.es_password.get_secret_value() == ES_PASSWORD
    assert s.slack_bot_token is not None and s.slack_bot_token.get_secret_value() == BOT_TOKEN
    assert s.kafka_sasl_password is not None and s.kafka_sasl_password.get_secret_value() == KAFKA_PASSWORD
    assert s.es_api_key is not None and s.es_api_key.get_secret_value() == f"{API_KEY_ID}:{API_KEY}"
    assert_clean(repr(s) + s.model_dump_json(), "settings from files")
    config = CliRunner().invoke(app, ["config"], env={"COLUMNS": "400"})
    assert config.exit_code == 0 and config.output.count("(set, hidden)") == 4
    assert_clean(config.output, "config from files")
    # the environment wins over the secrets folder
    clean_env.setenv("CROSSWIRE_KAFKA_SASL_PASSWORD", "from-the-environment")
    assert Settings().kafka_sasl_password.get_secret_value() == "from-the-environment"  # type: ignore[union-attr]


@pytest.mark.parametrize("name", SECRET_FILE_FIELDS)
def test_secret_file_errors_name_the_variable_and_path_only(name: str, clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    var = f"CROSSWIRE_{name.upper()}_FILE"
    missing = tmp_path / "nope"
    clean_env.setenv(var, str(missing))
    with pytest.raises(ValidationError, match=f"{var}: cannot read {missing}: No such file"):
        Settings()
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe SENTINEL " + KAFKA_PASSWORD.encode())
    clean_env.setenv(var, str(binary))
    with pytest.raises(ValidationError, match=f"{var}: {binary} is not UTF-8 text") as info:
        Settings()
    assert_clean(str(info.value), "unreadable secret file error")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    clean_env.setenv(var, str(empty))
    with pytest.raises(ValidationError, match="is empty"):
        Settings()
    good = tmp_path / "good"
    good.write_text(ES_PASSWORD)
    clean_env.setenv(var, str(good))
    clean_env.setenv(f"CROSSWIRE_{name.upper()}", BOT_TOKEN)
    with pytest.raises(ValidationError, match=f"set either CROSSWIRE_{name.upper()} or {var}, not both") as info:
        Settings()
    assert_clean(str(info.value), "conflicting secret error")
    result = CliRunner().invoke(app, ["config"], env={"COLUMNS": "400"})
    assert result.exit_code == 2 and "not both" in result.output
    assert_clean(result.output, "conflicting secret CLI error")


def test_secrets_dir_must_be_a_directory(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("CROSSWIRE_SECRETS_DIR", str(tmp_path / "absent"))
    with pytest.raises(ValidationError, match="CROSSWIRE_SECRETS_DIR: .*absent is not a directory"):
        Settings()


def test_incomplete_security_settings_fail_at_start_up(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="SASL_SSL needs CROSSWIRE_KAFKA_SASL_MECHANISM, CROSSWIRE_KAFKA_SASL_USERNAME"):
        Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_password=KAFKA_PASSWORD)
    with pytest.raises(ValidationError, match="kafka_sasl_mechanism must be one of"):
        Settings(kafka_sasl_mechanism="GSSAPI")


# -------------------------------------------------------------------------- Slack, a real server


class EchoServer:
    """Answers every request with ``status`` and a body that quotes the request line, the way
    some proxies and error pages do (the worst case for a URL-borne secret)."""

    def __init__(self, status: int) -> None:
        server_self = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.dumps({"ok": False, "error": f"no route for {self.command} {self.path}"}).encode()
                self.send_response(server_self.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_HEAD = _any  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self.status = status
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def echo() -> Iterator[EchoServer]:
    server = EchoServer(500)
    yield server
    server.close()


@pytest.mark.parametrize("alerter_name", ["slack", "slack-bot"])
@pytest.mark.parametrize("status", [500, 400, 429, None], ids=["5xx", "4xx", "429", "refused"])
def test_slack_failures_leak_nothing(alerter_name: str, status: int | None, echo: EchoServer,
                                     clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from pipeline.alert import make_alerter

    port = echo.port if status is not None else closed_port()
    echo.status = status or 500
    values = secret_env(port)
    s = Settings(
        slack_webhook_url=values["CROSSWIRE_SLACK_WEBHOOK_URL"],
        slack_bot_token=BOT_TOKEN if alerter_name == "slack-bot" else None,
        slack_channel="C0TEST",
        slack_api_url=f"http://127.0.0.1:{port}/api",
        slack_allowed_hosts=("127.0.0.1",),
        alert_max_retries=1,
        alert_timeout_s=2.0,
    )
    with caplog.at_level(logging.DEBUG):
        alerter = make_alerter(s, name=alerter_name, sleep=lambda _: None)
        result = alerter.post({"text": "x"})
    assert result.status == "failed"
    assert_clean(records_text(caplog.records), f"{alerter_name} logs")
    assert_clean(f"{result!r} {result.error} {alerter!r} {alerter}", f"{alerter_name} result")
    assert any(r.name.startswith(("httpx", "httpcore")) for r in caplog.records), "the libraries' DEBUG logs were exercised"


def test_webhook_config_errors_leak_nothing(clean_env: pytest.MonkeyPatch) -> None:
    from pipeline.alert import make_alerter

    for url in (f"https://evil.example{WEBHOOK_PATH}", f"http://hooks.slack.com{WEBHOOK_PATH}", f"not a url {WEBHOOK_TOKEN}"):
        with pytest.raises(Exception) as info:
            make_alerter(Settings(slack_webhook_url=url), name="slack")
        assert_clean(f"{info.value} {info.value!r}", "webhook config error")


# ------------------------------------------------------------------- Elasticsearch, real sockets


@pytest.mark.parametrize("auth", ["api_key", "basic"])
@pytest.mark.parametrize("status", [401, 503, None], ids=["401", "503", "refused"])
def test_search_client_failures_leak_nothing(auth: str, status: int | None, echo: EchoServer,
                                             clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from pipeline.search import SearchUnavailableError, detect_compat, make_client

    echo.status = status or 500
    port = echo.port if status is not None else closed_port()
    creds = {"es_api_key": f"{API_KEY_ID}:{API_KEY}"} if auth == "api_key" else {"es_username": ES_USER, "es_password": ES_PASSWORD}
    url = f"http://127.0.0.1:{port}"
    s = Settings(es_url=url, es_compat="auto", **creds)
    errors: list[BaseException] = []
    with caplog.at_level(logging.DEBUG):
        try:
            detect_compat(s, attempts=1, timeout_s=2)
        except SearchUnavailableError as e:
            errors.append(e)
        client = make_client(s, compat="elasticsearch", max_retries=1, request_timeout=2)
        try:
            client.info()
        except Exception as e:  # noqa: BLE001 - whatever the client raises must be clean
            errors.append(e)
    assert errors, "the calls must fail"
    text = records_text(caplog.records) + "\n".join(f"{e}\n{e!r}\n{getattr(e, 'body', '')}" for e in errors)
    assert_clean(text, f"search client ({auth}, {status})")
    assert any(r.name.startswith(("elastic_transport", "urllib3")) for r in caplog.records)


# ---------------------------------------------------------------------------- Kafka, real sockets


def test_kafka_clients_with_sasl_leak_nothing(env: dict[str, str], clean_env: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    from pipeline.kafka import client_options, ensure_topics

    clean_env.setenv("CROSSWIRE_KAFKA_BOOTSTRAP", f"127.0.0.1:{closed_port()}")
    s = Settings()
    failures: list[BaseException] = []
    with caplog.at_level(logging.DEBUG):
        try:
            ensure_topics(s, timeout_s=1)  # kafka-python's admin client logs its whole configuration at DEBUG
        except KafkaError as e:
            failures.append(e)
        try:  # the producer ArticleProducer builds, with a short bootstrap wait
            KafkaProducer(**client_options(s), bootstrap_timeout_ms=1000, max_block_ms=1000).close()
        except KafkaError as e:
            failures.append(e)
    assert failures
    assert any("configuration" in r.getMessage() for r in caplog.records), "kafka-python's config line was logged"
    assert_clean(records_text(caplog.records) + "".join(f"{e}{e!r}" for e in failures), "kafka-python")


def test_kafka_sasl_plain_request_is_masked_in_debug_logs(env: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    """SASL/PLAIN sends the password inside SaslAuthenticateRequest.auth_bytes, which kafka-python's
    protocol parser logs at DEBUG: log that very object, with that very logger, as it does."""
    from kafka.protocol.sasl import SaslAuthenticateRequest

    Settings()  # registers the secrets, as any command does
    request = SaslAuthenticateRequest(auth_bytes=b"\x00crosswire\x00" + KAFKA_PASSWORD.encode())
    assert KAFKA_PASSWORD in repr(request)  # the leak the masking is for
    with caplog.at_level(logging.DEBUG, logger="kafka.protocol.parser"):
        logging.getLogger("kafka.protocol.parser").debug("%s Sending request %d %s", "node=1", 3, request)
    assert "SaslAuthenticateRequest" in caplog.text and logs.MASK in caplog.text
    assert_clean(caplog.text, "kafka-python SASL request")


# ------------------------------------------------------------------------------- metrics endpoint


def test_metrics_and_health_endpoints_leak_nothing(env: dict[str, str]) -> None:
    from pipeline.health import Health, serve
    from pipeline.metrics import Metrics

    Settings()
    metrics = Metrics.create()
    metrics.alerts.labels("slack", "failed").inc()
    metrics.es_errors.inc()
    metrics.dead_letters.labels("parse", "invalid_json").inc()
    health = Health()
    server = serve(metrics.registry, health, 0, addr="127.0.0.1")
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        bodies = [urllib.request.urlopen(base + path).read().decode() for path in ("/metrics", "/healthz")]
        try:
            urllib.request.urlopen(base + "/readyz")
        except urllib.error.HTTPError as e:
            bodies.append(e.read().decode())
    finally:
        server.shutdown()
        server.server_close()
    assert "crosswire_alerts_total" in bodies[0]
    for body in bodies:
        assert_clean(body, "HTTP endpoint")


# -------------------------------------------------------------------------------- log formatting


def test_json_formatter_masks_registered_secrets_everywhere(env: dict[str, str]) -> None:
    Settings()
    stream = io.StringIO()
    logger = logging.getLogger("crosswire.test.secrets")
    logger.propagate = False
    logger.addHandler(logs.json_handler(stream))
    logger.setLevel(logging.DEBUG)
    try:
        logger.info("posting to %s", f"https://hooks.slack.com{WEBHOOK_PATH}", extra={"key": WEBHOOK_TOKEN})
        logger.debug("Authorization: Basic %s / ApiKey %s", B64_BASIC, B64_API_KEY)
        try:
            raise RuntimeError(f"login failed for {ES_USER}:{ES_PASSWORD}")
        except RuntimeError:
            logger.exception("connect failed", stack_info=True)
    finally:
        logger.handlers.clear()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 3
    assert lines[0]["message"].startswith("posting to https://hooks.slack.com") and logs.MASK in lines[0]["message"]
    assert "RuntimeError" in lines[2]["exception"] and "stack" in lines[2]
    assert_clean(stream.getvalue(), "JSON log lines")


def test_redactor_ignores_short_values_and_masks_longest_first() -> None:
    r = logs.Redactor()
    r.add(["abc", "secret-value", "secret-value-longer"])
    assert "abc" not in r  # too short to mask safely
    assert r.redact("x secret-value-longer y secret-value abc") == f"x {logs.MASK} y {logs.MASK} abc"


# ------------------------------------------------------------------------------ JSON from line 1


EARLY_SCRIPT = r"""
import logging, sys, warnings
from pipeline.logs import configure_logging, logging_config
configure_logging("json", "info")
logging.getLogger("crosswire.worker").info("metrics on :%d", 9464)
logging.getLogger("kafka.conn").warning("a library's early warning")
warnings.warn("a Python warning before faust starts")
# what faust's Worker does later with Worker(logging_config=logging_config(...)):
from mode.utils.logging import setup_logging
setup_logging(loglevel="info", logging_config=logging_config("json", "info"))
logging.getLogger("faust.worker").info("after faust configured logging")
logging.getLogger("crosswire.worker").info("linked", extra={"article": "a1", "story": "s1"})
raise SystemError("start-up failed")
"""


def test_every_line_is_json_from_the_first_one() -> None:
    proc = subprocess.run([sys.executable, "-c", EARLY_SCRIPT], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    docs = []
    for line in lines:
        try:
            docs.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}\n--- stderr:\n{proc.stderr}")
    messages = [d["message"] for d in docs]
    assert messages[0] == "metrics on :9464"
    assert any("a Python warning before faust starts" in m for m in messages)
    assert "after faust configured logging" in messages
    assert any(d.get("article") == "a1" and d.get("story") == "s1" for d in docs)
    assert docs[-1]["level"] == "critical" and "SystemError: start-up failed" in docs[-1]["exception"]


def test_text_format_stays_text() -> None:
    script = "from pipeline.logs import configure_logging; import logging; configure_logging('text', 'info'); logging.getLogger('x').info('hello')"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0 and "[INFO] x: hello" in proc.stderr
    with pytest.raises(ValueError):
        json.loads(proc.stderr.splitlines()[0])
