#!/usr/bin/env python3
"""Import Crosswire's Kibana saved objects (data views, saved searches, visualizations, dashboard).

    python deploy/kibana/import_objects.py                 # Kibana at http://127.0.0.1:5601
    KIBANA_URL=https://kibana.example.org:5601 KIBANA_API_KEY=... python deploy/kibana/import_objects.py
    python deploy/kibana/import_objects.py --prefix staging --dry-run > staging.ndjson

Standard library only, so it runs in a bare ``python`` image (docker compose's ``kibana-setup``)
without the Crosswire package. Steps:

1. wait until ``GET /api/status`` reports Kibana available (503 while it starts), up to
   ``--timeout`` seconds; a 401/403 fails at once, because waiting will not fix credentials;
2. read ``crosswire.ndjson`` next to this script and give every data view the index prefix
   (``CROSSWIRE_ES_INDEX_PREFIX``, the same setting the workers use): the file holds the default
   ``crosswire-articles*`` and so on, and only data view *titles* (the index patterns) change.
   Object ids stay the same, so one Kibana space holds one Crosswire deployment;
3. ``POST /api/saved_objects/_import?overwrite=true`` (multipart, ``kbn-xsrf: true``). Overwriting
   makes the import idempotent: running it again restores the shipped objects (and drops edits made
   to them in Kibana; save edited copies under new ids).

Settings (flags override the environment):

    KIBANA_URL                  base URL, default http://127.0.0.1:5601 (a base path is kept)
    KIBANA_SPACE                space id; unset: the default space
    KIBANA_API_KEY              an API key (the "encoded" form), sent as "Authorization: ApiKey ..."
    KIBANA_USERNAME, KIBANA_PASSWORD   basic authentication instead of an API key
    KIBANA_CA_FILE              CA bundle for an https Kibana with a private CA
    KIBANA_WAIT_TIMEOUT_S       how long to wait for Kibana, default 300
    CROSSWIRE_ES_INDEX_PREFIX   index prefix, default crosswire

Exit status: 0 imported; 1 Kibana rejected some objects (each failure is printed); 2 bad settings,
Kibana unreachable or not available in time, or an HTTP error.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import re
import ssl
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

DEFAULT_URL = "http://127.0.0.1:5601"
DEFAULT_FILE = Path(__file__).resolve().with_name("crosswire.ndjson")
DEFAULT_PREFIX = "crosswire"
DEFAULT_TIMEOUT_S = 300.0
SHIPPED_PREFIX = "crosswire"  # the prefix the NDJSON file is written with

# Elasticsearch index names: lowercase, no wildcards, separators or spaces, not starting with - _ +.
_PREFIX = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_SPACE = re.compile(r"^[a-z0-9_-]+$")
# Kibana 8 answers 200 for "available" and "degraded" (a plugin is unwell; the saved-objects API,
# part of core, still works) and 503 otherwise, which is also what the compose healthcheck accepts.
# 7.x said green/yellow.
READY_LEVELS = frozenset({"available", "degraded", "green", "yellow"})


class SetupError(RuntimeError):
    """Kibana could not be reached, was not available in time, or refused a request."""


@dataclass(frozen=True)
class Config:
    """Where Kibana is, how to authenticate, and what to import."""

    url: str = DEFAULT_URL
    file: Path = DEFAULT_FILE
    prefix: str = DEFAULT_PREFIX
    space: str | None = None
    api_key: str | None = None
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    poll_s: float = 2.0
    request_timeout_s: float = 30.0
    dry_run: bool = False


# ------------------------------------------------------------------------------------- objects


def read_objects(text: str) -> list[dict[str, Any]]:
    """The saved objects of an NDJSON export, one JSON object per non-blank line.

    Raises ``ValueError`` naming the line for anything that is not a JSON object with a type and id."""
    objects = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {number}: not JSON ({exc.msg})") from None
        if not isinstance(obj, dict) or not obj.get("type") or not obj.get("id"):
            raise ValueError(f"line {number}: not a saved object (needs 'type' and 'id')")
        objects.append(obj)
    return objects


def check_prefix(prefix: str) -> str:
    """``prefix`` if it can start an Elasticsearch index name, else ``ValueError``."""
    if not _PREFIX.fullmatch(prefix) or len(prefix) > 200:
        raise ValueError(
            f"index prefix {prefix!r} is not a valid start of an Elasticsearch index name "
            "(lowercase letters, digits, '.', '_' and '-'; not starting with '-', '_' or '.')"
        )
    return prefix


def with_prefix(objects: Sequence[Mapping[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """Copies of ``objects`` whose data view titles use ``prefix`` instead of the shipped one.

    Only ``index-pattern`` titles that start with ``crosswire-`` change; every other object, and
    every id and reference, is returned as it was (references name data views by id, not title)."""
    check_prefix(prefix)
    shipped = f"{SHIPPED_PREFIX}-"
    out = []
    for obj in objects:
        obj = json.loads(json.dumps(obj))  # deep copy: the caller's objects stay as they were
        attributes = obj.get("attributes") or {}
        title = attributes.get("title")
        if obj.get("type") == "index-pattern" and isinstance(title, str) and title.startswith(shipped):
            attributes["title"] = f"{prefix}-{title[len(shipped):]}"
        out.append(obj)
    return out


def to_ndjson(objects: Sequence[Mapping[str, Any]]) -> bytes:
    """One compact JSON object per line, as Kibana exports them."""
    return "".join(json.dumps(o, ensure_ascii=False, separators=(",", ":")) + "\n" for o in objects).encode()


def multipart(content: bytes, *, filename: str, boundary: str | None = None) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body with ``content`` as the form field ``file`` (what the import
    API reads), and its ``Content-Type`` header value."""
    boundary = boundary or f"crosswire-{uuid.uuid4().hex}"
    if boundary.encode() in content:  # pragma: no cover - a random uuid in the payload
        raise ValueError("multipart boundary occurs in the payload")
    safe_name = filename.replace('"', "").replace("\r", "").replace("\n", "")
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{safe_name}"\r\n'
        "Content-Type: application/ndjson\r\n\r\n"
    ).encode()
    body = head + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


# ---------------------------------------------------------------------------------------- HTTP


def api_url(cfg: Config, path: str) -> str:
    """``path`` under Kibana's base URL and, when set, the space (``/s/<space>/api/...``)."""
    base = cfg.url.rstrip("/")
    space = f"/s/{quote(cfg.space, safe='')}" if cfg.space else ""
    return f"{base}{space}{path}"


def redact(url: str) -> str:
    """``scheme://host[:port]``: user info, path and query never reach a log."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}" + (f":{parts.port}" if parts.port else "")


_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, OSError)


def auth_headers(cfg: Config) -> dict[str, str]:
    if cfg.api_key:
        return {"Authorization": f"ApiKey {cfg.api_key}"}
    if cfg.username is not None:
        token = base64.b64encode(f"{cfg.username}:{cfg.password or ''}".encode()).decode()
        return {"Authorization": f"Basic {token}"}
    return {}


def _ssl_context(cfg: Config) -> ssl.SSLContext | None:
    if cfg.ca_file is None:
        return None
    return ssl.create_default_context(cafile=str(cfg.ca_file))


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8", "replace"))


Transport = Callable[[urllib.request.Request, float], Response]


def urllib_transport(cfg: Config) -> Transport:
    """Send a request with urllib; HTTP error statuses are returned, not raised."""
    context = _ssl_context(cfg)

    def send(request: urllib.request.Request, timeout: float) -> Response:
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:
                return Response(resp.status, resp.read())
        except urllib.error.HTTPError as exc:
            return Response(exc.code, exc.read() or b"")

    return send


def _excerpt(body: bytes, limit: int = 300) -> str:
    text = body.decode("utf-8", "replace").strip()
    return text if len(text) <= limit else text[:limit] + "..."


def status_level(response: Response) -> str | None:
    """``available``, ``degraded``, ... from an ``/api/status`` answer (``None`` if unreadable).

    Kibana 8 answers ``{"status": {"overall": {"level": ...}}}``; 7.x used ``overall.state``."""
    try:
        overall = response.json()["status"]["overall"]
    except (ValueError, KeyError, TypeError):
        return None
    level = overall.get("level") or overall.get("state")
    return str(level).lower() if level else None


def wait_until_available(
    cfg: Config,
    transport: Transport,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] = lambda message: None,
) -> None:
    """Return once ``/api/status`` answers 200 with a ready level; ``SetupError`` after
    ``cfg.timeout_s`` (with the last thing seen), or at once on 401/403."""
    deadline = clock() + cfg.timeout_s
    url = api_url(cfg, "/api/status")
    last = "no answer yet"
    logged = None
    while True:
        request = urllib.request.Request(url, headers={**auth_headers(cfg), "Accept": "application/json"})
        try:
            response = transport(request, cfg.request_timeout_s)
        except _NETWORK_ERRORS as exc:
            reason = getattr(exc, "reason", exc)
            last = f"cannot connect to {redact(cfg.url)}: {reason}"
        else:
            level = status_level(response)
            if response.status in (401, 403):
                raise SetupError(
                    f"{redact(cfg.url)}/api/status answered {response.status}: set KIBANA_API_KEY or "
                    "KIBANA_USERNAME/KIBANA_PASSWORD to a user allowed to manage saved objects"
                )
            if response.status == 200 and level in READY_LEVELS:
                return
            last = f"HTTP {response.status}, status {level or 'unknown'}"
        if clock() >= deadline:
            raise SetupError(f"Kibana at {redact(cfg.url)} was not available within {cfg.timeout_s:g} s ({last})")
        if last != logged:  # once per change, not once per poll
            log(f"waiting for Kibana at {redact(cfg.url)}: {last}")
            logged = last
        sleep(max(0.0, min(cfg.poll_s, deadline - clock())))


def import_payload(cfg: Config, payload: bytes, transport: Transport) -> dict[str, Any]:
    """POST the NDJSON to the saved-objects import API; the decoded answer.

    ``SetupError`` when the answer is not a 200 with a JSON object (a 200 can still report failed
    objects: see :func:`failures`)."""
    body, content_type = multipart(payload, filename=cfg.file.name)
    request = urllib.request.Request(
        api_url(cfg, "/api/saved_objects/_import?overwrite=true"),
        data=body,
        method="POST",
        headers={**auth_headers(cfg), "kbn-xsrf": "true", "Content-Type": content_type, "Accept": "application/json"},
    )
    try:
        response = transport(request, cfg.request_timeout_s)
    except _NETWORK_ERRORS as exc:
        raise SetupError(f"import request to {redact(cfg.url)} failed: {getattr(exc, 'reason', exc)}") from None
    if response.status != 200:
        raise SetupError(f"import answered HTTP {response.status}: {_excerpt(response.body)}")
    try:
        result = response.json()
    except ValueError:
        raise SetupError(f"import answered 200 without JSON: {_excerpt(response.body)}") from None
    if not isinstance(result, dict):
        raise SetupError(f"unexpected import answer: {_excerpt(response.body)}")
    return result


def failures(result: Mapping[str, Any]) -> list[str]:
    """One line per object Kibana did not import (empty when ``success`` is true)."""
    lines = []
    for error in result.get("errors") or []:
        detail = error.get("error") or {}
        kind = detail.get("type", "unknown")
        what = f"{error.get('type')} {error.get('id')!r}"
        if error.get("meta", {}).get("title") or error.get("title"):
            what += f" ({error.get('meta', {}).get('title') or error.get('title')})"
        extra = ""
        if kind == "missing_references":
            refs = ", ".join(f"{r.get('type')} {r.get('id')!r}" for r in detail.get("references") or [])
            extra = f": missing {refs}"
        elif detail.get("message"):
            extra = f": {detail['message']}"
        lines.append(f"{what}: {kind}{extra}")
    if not lines and not result.get("success", False):
        lines.append("import reported success=false without errors")
    return lines


# ------------------------------------------------------------------------------------------ CLI


def config_from(argv: Sequence[str] | None, env: Mapping[str, str]) -> Config:
    """Flags over environment over defaults; ``ValueError`` for a bad prefix or space."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=env.get("KIBANA_URL") or DEFAULT_URL, help="Kibana base URL (KIBANA_URL)")
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE, help="NDJSON to import")
    parser.add_argument(
        "--prefix", default=env.get("CROSSWIRE_ES_INDEX_PREFIX") or DEFAULT_PREFIX,
        help="index prefix of the data views (CROSSWIRE_ES_INDEX_PREFIX, default crosswire)",
    )
    parser.add_argument("--space", default=env.get("KIBANA_SPACE") or None, help="Kibana space id (KIBANA_SPACE)")
    parser.add_argument(
        "--timeout", type=float, default=float(env.get("KIBANA_WAIT_TIMEOUT_S") or DEFAULT_TIMEOUT_S),
        help="seconds to wait for Kibana to become available (KIBANA_WAIT_TIMEOUT_S, default 300)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the NDJSON that would be imported")
    args = parser.parse_args(argv)
    if args.space is not None and not _SPACE.fullmatch(args.space):
        raise ValueError(f"space id {args.space!r}: use lowercase letters, digits, '_' and '-'")
    if args.timeout < 0:
        raise ValueError("--timeout must be >= 0")
    ca_file = env.get("KIBANA_CA_FILE")
    return Config(
        url=args.url,
        file=args.file,
        prefix=check_prefix(args.prefix),
        space=args.space,
        api_key=env.get("KIBANA_API_KEY") or None,
        username=env.get("KIBANA_USERNAME") or None,
        password=env.get("KIBANA_PASSWORD") or None,
        ca_file=Path(ca_file) if ca_file else None,
        timeout_s=args.timeout,
        dry_run=args.dry_run,
    )


def run(cfg: Config, transport: Transport, *, out: Any = None, err: Any = None,
        clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> int:
    """Wait, import, report; the exit status (see the module docstring). ``out``/``err`` default to
    the streams current at call time."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    try:
        objects = with_prefix(read_objects(cfg.file.read_text(encoding="utf-8")), cfg.prefix)
    except (OSError, ValueError) as exc:
        print(f"error: {cfg.file}: {exc}", file=err)
        return 2
    payload = to_ndjson(objects)
    if cfg.dry_run:
        out.write(payload.decode())
        return 0
    try:
        wait_until_available(cfg, transport, clock=clock, sleep=sleep, log=lambda m: print(m, file=err))
        result = import_payload(cfg, payload, transport)
    except SetupError as exc:
        print(f"error: {exc}", file=err)
        return 2
    problems = failures(result)
    if problems:
        print(f"error: Kibana did not import {len(problems)} of {len(objects)} objects:", file=err)
        for line in problems:
            print(f"  {line}", file=err)
        return 1
    count = result.get("successCount", len(objects))
    where = f" in space {cfg.space}" if cfg.space else ""
    print(f"imported {count} saved objects into {redact(cfg.url)}{where} (index prefix {cfg.prefix!r})", file=out)
    return 0


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    try:
        cfg = config_from(argv, env)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return run(cfg, urllib_transport(cfg))


if __name__ == "__main__":
    sys.exit(main())
