"""Structural tests of the docker-compose deployment, its image and its documentation.

Docker cannot run here, so these tests read the files: the compose file must wire the services
together the way the workers expect, every ``CROSSWIRE_*`` name must be a real setting, the env
example must document every setting, and the image must install the hash-pinned spaCy model.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr, ValidationError

from pipeline.settings import Settings
from tests.conftest import REPO

COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "deploy" / "Dockerfile"
ENV_EXAMPLE = REPO / "deploy" / "crosswire.env.example"
PROMETHEUS_FILE = REPO / "deploy" / "prometheus" / "prometheus.yml"
DOCKERIGNORE = REPO / ".dockerignore"
MODEL_REQUIREMENTS = REPO / "deploy" / "model-requirements.txt"

SERVICES = {"kafka", "elasticsearch", "kibana", "prometheus", "init", "worker"}
# Host ports a developer reaches the stack on; the host-side defaults of Settings use 9092/9200.
PUBLISHED = {"kafka": 9092, "elasticsearch": 9200, "kibana": 5601, "prometheus": 9090}

# A trailing `*` (as in "CROSSWIRE_KAFKA_SASL_*" in a comment) names a family of settings.
ENV_NAME = re.compile(r"\b(?P<name>CROSSWIRE_[A-Z0-9_]+)\b(?P<star>\*)?")
# `# CROSSWIRE_X=value` (documented but unset) or `CROSSWIRE_X=value` (set).
ENV_LINE = re.compile(r"^(?P<commented>#\s*)?(?P<name>CROSSWIRE_[A-Z0-9_]+)=(?P<value>.*)$")
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?::?-(?P<default>[^}]*))?\}")


# --- helpers -----------------------------------------------------------------------------------


def setting_env_names() -> set[str]:
    """The environment names pydantic-settings reads: prefix + field name, upper-cased."""
    prefix = Settings.model_config["env_prefix"]
    return {f"{prefix}{name}".upper() for name in Settings.model_fields}


def secret_env_names() -> set[str]:
    return {
        f"CROSSWIRE_{name.upper()}"
        for name, field in Settings.model_fields.items()
        if "SecretStr" in str(field.annotation)
    }


def optional_env_names() -> set[str]:
    """Settings whose default is None: an empty value would set them, not leave them unset."""
    fields = Settings.model_fields.items()
    return {f"CROSSWIRE_{name.upper()}" for name, field in fields if field.default is None}


def interpolate(value: Any) -> Any:
    """Resolve compose ``${VAR:-default}`` with an empty environment, as on a fresh checkout."""
    if not isinstance(value, str):
        return value
    return INTERPOLATION.sub(lambda m: m.group("default") or "", value)


def image_tag(image: str) -> tuple[str, str]:
    """Split ``repo[:tag]`` (a registry host may carry a port, so split after the last '/')."""
    head, _, last = image.rpartition("/")
    name, sep, tag = last.partition(":")
    return (f"{head}/{name}" if head else name), (tag if sep else "")


def published_ports(service: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(host ip, host port, container port) for short and long port syntax."""
    out = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            out.append((port.get("host_ip", ""), int(port["published"]), int(port["target"])))
            continue
        parts = str(port).split(":")
        host_ip = parts[0] if len(parts) == 3 else ""
        out.append((host_ip, int(parts[-2]), int(parts[-1].split("/")[0])))
    return out


def env_example_entries() -> list[tuple[bool, str, str]]:
    """(commented out, name, value) for every ``CROSSWIRE_X=`` line of the env example."""
    out = []
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        m = ENV_LINE.match(line.strip())
        if m:
            out.append((bool(m.group("commented")), m.group("name"), m.group("value")))
    return out


def build_settings(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    for name in setting_env_names():
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, args = line.partition(" ")
            out.append((instruction.upper(), args.strip()))
    return out


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [p.strip().rstrip("/") for p in lines if p.strip() and not p.strip().startswith(("#", "!"))]


def is_ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore drops ``path`` (or a directory above it) from the build context."""
    parts = Path(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        pattern = pattern.removeprefix("**/")
        if any(fnmatch.fnmatchcase(p, pattern) or fnmatch.fnmatchcase(Path(p).name, pattern)
               for p in prefixes):
            return True
    return False


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


# --- docker-compose.yml ------------------------------------------------------------------------


def test_compose_has_every_service(services: dict[str, Any]) -> None:
    assert SERVICES <= set(services)


def test_images_are_pinned(services: dict[str, Any]) -> None:
    for name, service in services.items():
        image = service.get("image")
        if image is None:
            assert "build" in service, f"{name} has neither image nor build"
            continue
        repo, tag = image_tag(image)
        assert tag or "@sha256:" in image, f"{name}: image {image} has no tag"
        assert tag != "latest", f"{name}: image {image} is not pinned"


def test_kafka_is_the_official_image_at_a_kraft_version(services: dict[str, Any]) -> None:
    repo, tag = image_tag(services["kafka"]["image"])
    assert repo == "apache/kafka"
    major, minor = (int(x) for x in tag.split(".")[:2])
    assert (major, minor) >= (3, 9), "pin 3.9.x or 4.x"


def test_elasticsearch_and_kibana_are_the_same_8x(services: dict[str, Any]) -> None:
    es_repo, es_tag = image_tag(services["elasticsearch"]["image"])
    kb_repo, kb_tag = image_tag(services["kibana"]["image"])
    assert es_repo == "docker.elastic.co/elasticsearch/elasticsearch"
    assert kb_repo == "docker.elastic.co/kibana/kibana"
    assert es_tag.split(".")[0] == "8"
    assert re.fullmatch(r"\d+\.\d+\.\d+", es_tag), "pin a patch version"
    assert kb_tag == es_tag, "Kibana must match the Elasticsearch version"


def test_prometheus_image(services: dict[str, Any]) -> None:
    repo, tag = image_tag(services["prometheus"]["image"])
    assert repo == "prom/prometheus"
    assert re.fullmatch(r"v\d+\.\d+\.\d+", tag)


def test_every_long_running_service_has_a_healthcheck(services: dict[str, Any]) -> None:
    long_running = [n for n, s in services.items() if str(s.get("restart", "")) != "no"]
    assert "init" not in long_running, "init is one-shot: restart must be \"no\""
    assert SERVICES - {"init"} <= set(long_running)
    for name in long_running:
        check = services[name].get("healthcheck")
        assert check and not check.get("disable", False), f"{name} has no healthcheck"
        test = check["test"]
        assert test and test[0] in {"CMD", "CMD-SHELL"}, f"{name}: healthcheck test {test!r}"


def test_healthchecks_probe_the_right_endpoints(services: dict[str, Any]) -> None:
    def probe(name: str) -> str:
        return " ".join(services[name]["healthcheck"]["test"])

    assert re.search(r"/opt/kafka/bin/kafka-(broker-api-versions|topics)\.sh", probe("kafka"))
    assert "localhost:9092" in probe("kafka")
    assert "_cluster/health" in probe("elasticsearch") and "wait_for_status=yellow" in probe("elasticsearch")
    assert "/api/status" in probe("kibana")
    assert "/-/healthy" in probe("prometheus")
    worker = probe("worker")
    assert "/healthz" in worker and "CROSSWIRE_METRICS_PORT" in worker
    assert str(Settings.model_fields["metrics_port"].default) in worker


def test_named_volumes_are_declared_and_used(compose: dict[str, Any], services: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    used: dict[str, set[str]] = {}
    for name, service in services.items():
        for volume in service.get("volumes", []):
            if isinstance(volume, dict):
                source, target = volume.get("source", ""), volume["target"]
            else:
                source, _, target = str(volume).partition(":")
            # "name:/path" is a named volume; "./x:/path" a bind mount; "/path" an anonymous one.
            if target and not source.startswith((".", "/", "~")):
                used.setdefault(source, set()).add(name)
    assert set(used) <= declared, f"undeclared named volumes: {set(used) - declared}"
    assert declared <= set(used), f"declared but unused volumes: {declared - set(used)}"
    mounts = {s: [str(v) for v in services[s].get("volumes", [])]
              for s in ("kafka", "elasticsearch", "prometheus")}
    assert any(v.endswith(":/var/lib/kafka/data") for v in mounts["kafka"])
    assert any(v.endswith(":/usr/share/elasticsearch/data") for v in mounts["elasticsearch"])
    assert any(v.endswith(":/prometheus") for v in mounts["prometheus"])


def test_kafka_log_dir_is_the_volume(services: dict[str, Any]) -> None:
    env = services["kafka"]["environment"]
    assert env["KAFKA_LOG_DIRS"] == "/var/lib/kafka/data"


def test_worker_and_init_build_the_dockerfile(services: dict[str, Any]) -> None:
    for name in ("worker", "init"):
        build = services[name]["build"]
        assert isinstance(build, dict), f"{name}: use the long build syntax"
        assert (REPO / build["context"]).resolve() == REPO
        assert (REPO / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    assert DOCKERFILE.is_file()


def test_commands_are_crosswire_subcommands(services: dict[str, Any]) -> None:
    # The image's ENTRYPOINT is `crosswire`, so a command is the subcommand and its arguments.
    def argv(name: str) -> list[str]:
        cmd = services[name]["command"]
        return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)

    assert argv("worker")[-1] == "worker" and argv("worker")[0] in {"worker", "crosswire"}
    assert argv("init")[-1] == "init" and argv("init")[0] in {"init", "crosswire"}


def test_published_ports(services: dict[str, Any]) -> None:
    for name, port in PUBLISHED.items():
        ports = published_ports(services[name])
        assert port in {host for _, host, _ in ports}, f"{name} does not publish {port}"
        # Nothing in the local stack asks for a password: keep it off the network.
        assert all(ip == "127.0.0.1" for ip, _, _ in ports), f"{name} publishes beyond localhost"
    assert {(h, c) for _, h, c in published_ports(services["elasticsearch"])} == {(9200, 9200)}
    assert {(h, c) for _, h, c in published_ports(services["kibana"])} == {(5601, 5601)}
    assert {(h, c) for _, h, c in published_ports(services["prometheus"])} == {(9090, 9090)}
    # Replicated workers cannot all bind one host port; Prometheus reaches them inside.
    assert not published_ports(services["worker"])


def test_dependencies_order_start_up(services: dict[str, Any]) -> None:
    def conditions(name: str) -> dict[str, str]:
        deps = services[name].get("depends_on", {})
        assert isinstance(deps, dict), f"{name}: depends_on needs conditions"
        return {dep: spec["condition"] for dep, spec in deps.items()}

    assert conditions("init") == {"kafka": "service_healthy", "elasticsearch": "service_healthy"}
    worker = conditions("worker")
    assert worker["init"] == "service_completed_successfully"
    assert worker["kafka"] == worker["elasticsearch"] == "service_healthy"
    assert conditions("kibana")["elasticsearch"] == "service_healthy"
    assert str(services["init"].get("restart")) == "no"


def test_kafka_is_a_consistent_single_kraft_node(services: dict[str, Any]) -> None:
    env = {k: str(v) for k, v in services["kafka"]["environment"].items()}
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    node_id = env["KAFKA_NODE_ID"]
    voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
    assert voters == [f"{node_id}@kafka:9093"]

    def names(listeners: str) -> dict[str, str]:
        return dict(item.split("://") for item in listeners.split(","))

    listeners = names(env["KAFKA_LISTENERS"])
    advertised = names(env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert listeners["PLAINTEXT"].endswith(":9092") and listeners["CONTROLLER"].endswith(":9093")
    assert set(advertised) <= set(listeners) <= set(protocols)
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in listeners
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] not in advertised
    assert advertised["PLAINTEXT"] == "kafka:9092"
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert env[key] == "1", key
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] in {"true", "false"}

    # The published host port must land on a listener that advertises that same host port,
    # otherwise host clients bootstrap and are then sent to an unreachable address.
    for ip, host, container in published_ports(services["kafka"]):
        listener = next(n for n, addr in listeners.items() if addr.endswith(f":{container}"))
        assert advertised[listener] == f"{ip or 'localhost'}:{host}"


def test_elasticsearch_is_single_node_local(services: dict[str, Any]) -> None:
    env = {k: str(v) for k, v in services["elasticsearch"]["environment"].items()}
    assert env["discovery.type"] == "single-node"
    assert env["xpack.security.enabled"] == "false"
    assert "-Xms1g" in env["ES_JAVA_OPTS"] and "-Xmx1g" in env["ES_JAVA_OPTS"]
    kibana_hosts = str(services["kibana"]["environment"]["ELASTICSEARCH_HOSTS"])
    assert "http://elasticsearch:9200" in kibana_hosts


@pytest.mark.parametrize("service", ["init", "worker"])
def test_crosswire_services_point_at_the_compose_stack(services: dict[str, Any], service: str) -> None:
    env = {k: interpolate(v) for k, v in services[service]["environment"].items()}
    assert env["CROSSWIRE_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert env["CROSSWIRE_ES_URL"] == "http://elasticsearch:9200"
    assert env["CROSSWIRE_ES_COMPAT"] == "elasticsearch"
    assert env["CROSSWIRE_ALIASES_FILE"].startswith("/app/config/")


@pytest.mark.parametrize("service", ["init", "worker"])
def test_compose_environment_is_valid_settings(
    services: dict[str, Any], service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = services[service]["environment"]
    assert isinstance(env, dict), "use the mapping form so values can be checked"
    # Secrets are passed through by name only: a literal here would be committed to git, and
    # an empty default would arrive as an empty (but set) secret.
    for name in secret_env_names() & set(env):
        assert env[name] is None, f"{name} must not have a value in docker-compose.yml"
    values = {k: str(interpolate(v)) for k, v in env.items() if v is not None}
    try:
        settings = build_settings(monkeypatch, values)
    except ValidationError as exc:  # pragma: no cover - the assertion message is the point
        pytest.fail(f"{service} environment does not parse as Settings: {exc}")
    if service == "worker":
        assert settings.metrics_port == 9464
        assert str(settings.data_dir) == "/var/lib/crosswire"
        assert any(str(v).split(":")[-1] == str(settings.data_dir) for v in services["worker"]["volumes"])
    assert settings.topic_partitions >= services["worker"].get("deploy", {}).get("replicas", 1), (
        "more workers than partitions leaves workers idle"
    )


def test_every_crosswire_name_is_a_setting() -> None:
    known = setting_env_names()
    for path in (COMPOSE_FILE, ENV_EXAMPLE, DOCKERFILE):
        matches = list(ENV_NAME.finditer(path.read_text(encoding="utf-8")))
        used = {m["name"] for m in matches if not m["star"]}
        families = {m["name"] for m in matches if m["star"]}
        assert used, f"{path.name} names no CROSSWIRE_* setting"
        assert used <= known, f"{path.name} names unknown settings: {sorted(used - known)}"
        for family in families:
            assert any(name.startswith(family) for name in known), f"{path.name}: no setting {family}*"


# --- deploy/crosswire.env.example --------------------------------------------------------------


def test_env_example_documents_every_setting() -> None:
    entries = env_example_entries()
    names = [name for _, name, _ in entries]
    assert len(names) == len(set(names)), "a setting is listed twice"
    missing = setting_env_names() - set(names)
    assert not missing, f"settings missing from crosswire.env.example: {sorted(missing)}"


def test_env_example_lines_are_commented() -> None:
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if ENV_LINE.match(line.strip()):
            assert i > 0 and lines[i - 1].startswith("#"), f"no comment above: {line}"


def test_env_example_secrets_are_empty_and_unset() -> None:
    entries = {name: (commented, value) for commented, name, value in env_example_entries()}
    secrets = secret_env_names()
    assert secrets, "Settings has no SecretStr fields?"
    for name in secrets:
        commented, value = entries[name]
        assert commented and value == "", f"{name} must be documented empty and commented out"
    # An empty value still sets an Optional setting (an empty secret, a Path of "."), so every
    # setting without a default stays commented out.
    for name in optional_env_names():
        assert entries[name][0], f"{name} defaults to None: leave it commented out"


def test_env_example_values_are_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    entries = env_example_entries()
    active = {name: value for commented, name, value in entries if not commented}
    assert active, "the example sets nothing"
    try:
        settings = build_settings(monkeypatch, active)
    except ValidationError as exc:  # pragma: no cover
        pytest.fail(f"crosswire.env.example does not parse as Settings: {exc}")
    # The active lines are the defaults, so sourcing the example changes nothing by surprise.
    defaults = Settings.model_construct()
    for name in active:
        field = name.removeprefix("CROSSWIRE_").lower()
        assert getattr(settings, field) == getattr(defaults, field), f"{name} differs from its default"
    # Each commented example value must also parse, so uncommenting it is safe.
    for commented, name, value in entries:
        if commented and value:
            try:
                build_settings(monkeypatch, {name: value})
            except ValidationError as exc:  # pragma: no cover
                pytest.fail(f"example value of {name} does not parse: {exc}")


def test_secret_fields_are_secretstr() -> None:
    # The env example and compose rules above key on SecretStr; make sure the known secrets are.
    for name in ("kafka_sasl_password", "es_api_key", "es_password", "slack_webhook_url"):
        if name in Settings.model_fields:
            settings = Settings.model_construct(**{name: SecretStr("x")})
            assert f"CROSSWIRE_{name.upper()}" in secret_env_names()
            assert "x" not in repr(getattr(settings, name))


# --- deploy/Dockerfile and .dockerignore -------------------------------------------------------


def test_dockerfile_base_user_and_entrypoint() -> None:
    steps = dockerfile_instructions()
    froms = [args for instr, args in steps if instr == "FROM"]
    assert froms and re.match(r"python:3\.11-slim", froms[-1]), froms
    users = [args for instr, args in steps if instr == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, "the image must not run as root"
    entrypoint = [args for instr, args in steps if instr == "ENTRYPOINT"]
    assert entrypoint and yaml.safe_load(entrypoint[-1]) == ["crosswire"]
    cmd = [args for instr, args in steps if instr == "CMD"]
    assert cmd and yaml.safe_load(cmd[-1]) == ["worker"]
    exposed = {int(p) for instr, args in steps if instr == "EXPOSE" for p in args.split()}
    assert Settings.model_fields["metrics_port"].default in exposed
    web_port = Settings.model_fields["web_port"].default
    assert web_port == 0 or web_port in exposed


def test_dockerfile_installs_the_model_by_hash() -> None:
    runs = [args for instr, args in dockerfile_instructions() if instr == "RUN"]
    model = [r for r in runs if "model-requirements.txt" in r]
    assert len(model) == 1
    argv = shlex.split(model[0])
    assert "--require-hashes" in argv and "--no-deps" in argv
    assert argv[argv.index("-r") + 1] == "deploy/model-requirements.txt"
    # The package itself is installed from the copied source tree.
    assert any(re.search(r"pip install (--?\S+ )*\.(\s|$)", r) for r in runs)


def test_config_dir_resolves_inside_the_image() -> None:
    """Templates and lexicons are found via ``CONFIG_DIR`` = <package dir>/../config, so the image
    must install the package editable from a tree where config/ sits next to pipeline/."""
    import pipeline.settings

    package_dir = Path(pipeline.settings.__file__).resolve().parent
    assert pipeline.settings.CONFIG_DIR == package_dir.parent / "config"

    steps = dockerfile_instructions()
    workdir = Path([args for instr, args in steps if instr == "WORKDIR"][-1])
    copies = {args.split()[0].rstrip("/"): args.split()[-1] for instr, args in steps if instr == "COPY"}
    package_dest = (workdir / copies["pipeline"]).resolve()
    config_dest = (workdir / copies["config"]).resolve()
    assert config_dest == package_dest.parent / "config"
    installs = [shlex.split(args) for instr, args in steps if instr == "RUN" and "pip install" in args]
    package_install = next(argv for argv in installs if "." in argv)
    assert "-e" in package_install or "--editable" in package_install, (
        "a non-editable install moves the package to site-packages and CONFIG_DIR with it"
    )


def test_console_script_matches_entrypoint() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["scripts"]["crosswire"].startswith("pipeline.")


def test_dockerfile_copies_what_the_package_needs() -> None:
    copies = [args.split() for instr, args in dockerfile_instructions() if instr == "COPY"]
    sources = {src.rstrip("/") for args in copies for src in args[:-1] if not src.startswith("--")}
    assert {"pyproject.toml", "README.md", "pipeline", "config", "deploy/model-requirements.txt"} <= sources
    # config/ is copied to /app/config, which is where the compose file points the settings.
    config_dest = next(args[-1] for args in copies if args[0].rstrip("/") == "config")
    workdir = [args for instr, args in dockerfile_instructions() if instr == "WORKDIR"][-1]
    assert (Path(workdir) / config_dest).resolve() == Path("/app/config")
    envs = " ".join(args for instr, args in dockerfile_instructions() if instr == "ENV")
    assert "CROSSWIRE_ALIASES_FILE=/app/config/aliases.yaml" in envs


def test_copied_sources_exist_and_are_not_dockerignored() -> None:
    copies = [args.split() for instr, args in dockerfile_instructions() if instr == "COPY"]
    patterns = dockerignore_patterns()
    for args in copies:
        for src in args[:-1]:
            if src.startswith("--"):
                continue
            assert (REPO / src).exists(), f"COPY {src}: missing from the repository"
            assert not is_ignored(src.rstrip("/"), patterns), f"COPY {src}: excluded by .dockerignore"


def test_dockerignore_keeps_secrets_and_venvs_out() -> None:
    patterns = dockerignore_patterns()
    for path in (".env", ".venv", ".git", "pipeline/__pycache__", ".crosswire"):
        assert is_ignored(path, patterns), f"{path} would be sent to the Docker daemon"
    assert not is_ignored("pipeline/settings.py", patterns)


def test_model_requirements_are_hash_pinned() -> None:
    lines = [
        line.strip()
        for line in MODEL_REQUIREMENTS.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert lines
    for line in lines:
        assert "==" in line and re.search(r"--hash=sha256:[0-9a-f]{64}\b", line), line


def test_dockerignore_matcher() -> None:
    # The helper above decides what the tests believe is ignored; check it on known cases.
    assert is_ignored("tests/unit/x.py", ["tests"])
    assert is_ignored("pipeline/__pycache__/a.pyc", ["**/__pycache__"])
    assert not is_ignored("pipeline/cli.py", ["tests", "*.egg-info"])


# --- deploy/prometheus/prometheus.yml ----------------------------------------------------------


def test_prometheus_scrapes_the_workers(services: dict[str, Any]) -> None:
    config = yaml.safe_load(PROMETHEUS_FILE.read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    job = jobs["crosswire-worker"]
    interval = job.get("scrape_interval", config.get("global", {}).get("scrape_interval"))
    assert interval == "15s"
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = [t for sc in job.get("static_configs", []) for t in sc["targets"]]
    targets += [f"{name}:{sd['port']}" for sd in job.get("dns_sd_configs", []) for name in sd["names"]]
    assert targets
    metrics_port = str(services["worker"]["environment"]["CROSSWIRE_METRICS_PORT"])
    for target in targets:
        host, _, port = target.rpartition(":")
        assert host in services, f"{target}: not a compose service"
        assert port == metrics_port == "9464"


def test_prometheus_mounts_this_config(services: dict[str, Any]) -> None:
    mounts = [str(v).split(":") for v in services["prometheus"]["volumes"]]
    config_mounts = {m[1]: (REPO / m[0]).resolve() for m in mounts if m[0].startswith("./")}
    # rule_files are relative to the config file, so each must be mounted next to it.
    rule_files = yaml.safe_load(PROMETHEUS_FILE.read_text(encoding="utf-8")).get("rule_files") or []
    expected = {"/etc/prometheus/prometheus.yml": PROMETHEUS_FILE.resolve()}
    expected |= {f"/etc/prometheus/{name}": (PROMETHEUS_FILE.parent / name).resolve() for name in rule_files}
    assert config_mounts == expected
