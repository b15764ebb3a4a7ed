"""docker-compose.yml, Dockerfile and .dockerignore: valid Compose and wired as INTERFACES §5 says.

Pure and fast, no Docker engine: the compose file is loaded with PyYAML, validated with jsonschema
against the vendored Compose Specification schema (deploy/compose/), and its wiring is checked
against §5 (ports, loopback), the local env file's variable names (trialwatch.devstack.envfile) and
the topic table (trialwatch.devstack.topics).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shlex
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from trialwatch.devstack import envfile, paths, topics

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
GITIGNORE = REPO / ".gitignore"
PYPROJECT = REPO / "pyproject.toml"
SCHEMA_FILE = REPO / "deploy" / "compose" / "compose-spec.schema.json"
# compose-spec/compose-spec, schema/compose-spec.json @ 00655e2222608fa6eaecdf12ac5195889ca2244a
SCHEMA_SHA256 = "bc50c2d79102aed8df21b3a13e56c9396c7a06da6cff5ce37629f2ee7eb41735"

KAFKA_IMAGE = "apache/kafka:4.1.2"
POSTGRES_IMAGE = "postgres:15"
INFRA = ("kafka", "postgres")
ONE_SHOTS = ("kafka-init", "migrate")
APPS = ("ingest", "safety_rules", "notifier")
LOOPBACK = "127.0.0.1"

# INTERFACES §5: container port (= the default) -> the env-file variable that moves its host side.
SECTION5_PORTS: dict[int, str] = {
    19092: "TRIALWATCH_KAFKA_PORT",
    5432: "TRIALWATCH_PG_PORT",
    2575: "TRIALWATCH_MLLP_PORT",
    8081: "TRIALWATCH_INGEST_PORT",
    8082: "TRIALWATCH_RULES_PORT",
    8083: "TRIALWATCH_NOTIFIER_PORT",
    8080: "TRIALWATCH_DASHBOARD_PORT",
    1025: "TRIALWATCH_SMTP_PORT",
}
EXPECTED_PORTS: dict[str, set[int]] = {
    "kafka": {19092},
    "postgres": {5432},
    "ingest": {8081, 2575},
    "safety_rules": {8082},
    "notifier": {8083},
    "smtp-sink": {1025},
    "kafka-init": set(),
    "migrate": set(),
}
HTTP_PORT_VAR = {
    "ingest": "TRIALWATCH_INGEST_PORT",
    "safety_rules": "TRIALWATCH_RULES_PORT",
    "notifier": "TRIALWATCH_NOTIFIER_PORT",
}
APP_ENV = (
    "TRIALWATCH_KAFKA_BOOTSTRAP",
    "DATABASE_URL",
    "TRIALWATCH_INGEST_PORT",
    "TRIALWATCH_RULES_PORT",
    "TRIALWATCH_NOTIFIER_PORT",
    "TRIALWATCH_MLLP_PORT",
    "TRIALWATCH_TOKEN",
)
EXPECTED_TOPICS = {
    "trialwatch.in.hl7": 6,
    "trialwatch.in.fhir": 6,
    "trialwatch.in.records": 6,
    "trialwatch.events.v1": 6,
    "trialwatch.signals.v1": 3,
    "trialwatch.alerts.v1": 3,
    "trialwatch.dlq.v1": 1,
}
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|PRIVATE_KEY|API_KEY")
REQUIRED_REF = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*):\?[^}]+\}")

# ---------------------------------------------------------------------------------------------------
# Compose variable interpolation (the subset of the spec's syntax: $$, $VAR, ${VAR}, ${VAR:-x},
# ${VAR-x}, ${VAR:?msg}, ${VAR?msg}, ${VAR:+x}, ${VAR+x}; anything else after a `$` is an error).

_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<invalid>.?))"
)


class MissingVariableError(LookupError):
    """A ${VAR:?...} / ${VAR?...} whose variable is unset: compose refuses to start."""


def interpolate_text(text: str, env: Mapping[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["invalid"] is not None:
            raise ValueError(f"invalid interpolation in {text!r}")
        name = match["braced"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        value = env.get(name)
        unset_or_empty = value is None or (op is not None and op.startswith(":") and value == "")
        if op in (":-", "-"):
            return arg if unset_or_empty else str(value)
        if op in (":?", "?"):
            if unset_or_empty:
                raise MissingVariableError(f"{name}: {arg}")
            return str(value)
        if op in (":+", "+"):
            return "" if unset_or_empty else arg
        return value or ""

    return _INTERPOLATION.sub(substitute, text)


def interpolate(node: Any, env: Mapping[str, str]) -> Any:
    """Interpolate every string value (not keys), as compose does after parsing the YAML."""
    if isinstance(node, str):
        return interpolate_text(node, env)
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(item, env) for item in node]
    return node


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


# ---------------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE_FILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def raw(compose_text: str) -> dict[str, Any]:
    loaded = yaml.safe_load(compose_text)
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def required_vars(raw: dict[str, Any]) -> set[str]:
    """Variables compose insists on (${VAR:?...}), in values only: comments do not count."""
    return {m["name"] for text in strings(raw) for m in REQUIRED_REF.finditer(text)}


@pytest.fixture(scope="module")
def fake_env(required_vars: set[str]) -> dict[str, str]:
    """Stand-ins for the git-ignored .env: only the variables compose requires, nothing else."""
    return {name: f"fake-{name.lower().replace('_', '-')}" for name in required_vars}


@pytest.fixture(scope="module")
def config(raw: dict[str, Any], fake_env: dict[str, str]) -> dict[str, Any]:
    """The compose model as `docker compose config` would see it with a minimal .env."""
    resolved = interpolate(raw, fake_env)
    assert isinstance(resolved, dict)
    return resolved


@pytest.fixture(scope="module")
def services(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return config["services"]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    return jsonschema.Draft7Validator(schema)


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on", {})
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: spec["condition"] for name, spec in deps.items()}


def url_password(value: str) -> str | None:
    """The password part of a (not yet interpolated) URL; ${...} references count as opaque text."""
    refs: list[str] = []

    def mask(match: re.Match[str]) -> str:
        refs.append(match[0])
        return f"REF{len(refs) - 1}X"

    password = urlsplit(re.sub(r"\$\{[^}]*\}", mask, value)).password
    return None if password is None else re.sub(r"REF(\d+)X", lambda m: refs[int(m[1])], password)


def probe_text(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(test)


# ---------------------------------------------------------------------------------------------------
# The vendored schema and validation against it


def test_vendored_schema_is_the_recorded_upstream_draft07_file(schema: dict[str, Any]) -> None:
    assert hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest() == SCHEMA_SHA256, (
        "deploy/compose/compose-spec.schema.json differs from the vendored upstream file "
        "(update deploy/compose/README.md and SCHEMA_SHA256 together)"
    )
    assert "draft-07" in schema["$schema"]
    assert schema["title"] == "Compose Specification"
    jsonschema.Draft7Validator.check_schema(schema)
    attribution = (SCHEMA_FILE.parent / "README.md").read_text(encoding="utf-8")
    assert "Apache License, Version 2.0" in attribution
    assert SCHEMA_SHA256 in attribution
    assert "Apache License" in (SCHEMA_FILE.parent / "LICENSE").read_text(encoding="utf-8")
    assert "Compose Specification" in (SCHEMA_FILE.parent / "NOTICE").read_text(encoding="utf-8")


def _errors(validator: jsonschema.protocols.Validator, document: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.path)))
    ]


def test_compose_file_is_valid_compose_spec(
    validator: jsonschema.protocols.Validator, raw: dict[str, Any], config: dict[str, Any]
) -> None:
    assert _errors(validator, raw) == []
    assert _errors(validator, config) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("services", "ingest", "depends_on", "kafka", "condition"), "service_ready"),
        (("services", "ingest", "ports", 0, "bind_address"), LOOPBACK),
        (("services", "postgres", "healthcheck", "retries"), [3]),
        (("services", "notifier", "restart_policy"), "always"),
    ],
)
def test_schema_validation_rejects_a_broken_compose_file(
    validator: jsonschema.protocols.Validator, raw: dict[str, Any], path: tuple[Any, ...], value: Any
) -> None:
    """Control: the validator really checks the file (a wrong key or value is reported)."""
    broken = copy.deepcopy(raw)
    node: Any = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert _errors(validator, broken) != []


# ---------------------------------------------------------------------------------------------------
# Services and images


def test_expected_services_exist(services: dict[str, dict[str, Any]]) -> None:
    assert set(INFRA + ONE_SHOTS + APPS) <= set(services)
    for name, service in services.items():
        for dependency in depends_on(service):
            assert dependency in services, f"{name} depends on undefined service {dependency}"


def test_images(services: dict[str, dict[str, Any]]) -> None:
    assert services["kafka"]["image"] == KAFKA_IMAGE
    assert services["kafka-init"]["image"] == KAFKA_IMAGE
    assert services["postgres"]["image"] == POSTGRES_IMAGE
    app_images = set()
    for name in (*APPS, "migrate"):
        build = services[name]["build"]
        assert isinstance(build, dict), name
        assert (REPO / build["context"]).resolve() == REPO
        assert (REPO / build["context"] / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE
        app_images.add(services[name].get("image"))
    assert len(app_images) == 1, f"one application image, not {app_images}"


# ---------------------------------------------------------------------------------------------------
# Ports: loopback only, §5 defaults


def test_published_ports_are_loopback_and_section5_defaults(
    raw: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    for name, service in raw["services"].items():
        assert service.get("network_mode") != "host", f"{name}: host networking bypasses 127.0.0.1"
        published: set[int] = set()
        for port in service.get("ports", []):
            assert isinstance(port, dict), f"{name}: use the long port syntax, not {port!r}"
            target = int(port["target"])
            assert port.get("host_ip") == LOOPBACK, f"{name}:{target} is not bound to {LOOPBACK}"
            assert port.get("protocol", "tcp") == "tcp"
            assert target in SECTION5_PORTS, f"{name}:{target} is not an INTERFACES §5 port"
            var = SECTION5_PORTS[target]
            assert port["published"] == f"${{{var}:-{target}}}", f"{name}:{target}"
            assert interpolate_text(port["published"], {}) == str(target)
            assert interpolate_text(port["published"], {var: "28000"}) == "28000"
            published.add(target)
        if name in EXPECTED_PORTS:
            assert published == EXPECTED_PORTS[name], name
    # Nothing published twice on the host.
    all_targets = [int(p["target"]) for s in services.values() for p in s.get("ports", [])]
    assert len(all_targets) == len(set(all_targets))


def test_port_variables_are_the_env_files_section5_defaults() -> None:
    dev = envfile.PORTS
    for port, var in SECTION5_PORTS.items():
        assert var in dev, var
        assert dev[var][0] == port, f"{var}: env file default {dev[var][0]} != §5 {port}"


# ---------------------------------------------------------------------------------------------------
# Kafka (KRaft, combined) and its topics


def _listeners(value: str) -> dict[str, tuple[str, int]]:
    result = {}
    for item in value.split(","):
        name, _, address = item.partition("://")
        host, _, port = address.rpartition(":")
        result[name] = (host, int(port))
    return result


def test_kafka_is_a_single_kraft_combined_node(services: dict[str, dict[str, Any]]) -> None:
    kafka = services["kafka"]
    env = env_of(kafka)
    assert env["KAFKA_PROCESS_ROLES"].split(",") == ["broker", "controller"]
    node_id = env["KAFKA_NODE_ID"]
    assert node_id.isdigit()
    listeners = _listeners(env["KAFKA_LISTENERS"])
    advertised = _listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert set(listeners) == set(protocols)
    assert controller in listeners and controller not in advertised
    assert set(advertised) <= set(listeners)
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    # The quorum is this node, on its controller listener.
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{node_id}@kafka:{listeners[controller][1]}"
    # Topics only by kafka-init; every internal topic fits one broker.
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    factors = {k: v for k, v in env.items() if k.endswith(("REPLICATION_FACTOR", "MIN_ISR"))}
    assert {
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
    } <= set(factors)
    assert set(factors.values()) == {"1"}, factors
    # Host clients reach the published loopback port, and are told to use exactly that address.
    (published,) = kafka["ports"]
    host_listener = [n for n, (_, port) in listeners.items() if port == int(published["target"])]
    assert len(host_listener) == 1
    assert advertised[host_listener[0]] == (LOOPBACK, int(published["published"]))
    # Data survives restarts on a named volume at the log dir.
    assert any(v.endswith(":" + env["KAFKA_LOG_DIRS"]) for v in kafka["volumes"])
    assert "kafka-broker-api-versions.sh" in probe_text(kafka) or "kafka-topics.sh" in probe_text(kafka)


def _internal_bootstrap(services: dict[str, dict[str, Any]]) -> str:
    env = env_of(services["kafka"])
    host, port = _listeners(env["KAFKA_ADVERTISED_LISTENERS"])[env["KAFKA_INTER_BROKER_LISTENER_NAME"]]
    return f"{host}:{port}"


def test_kafka_init_creates_the_topic_table(services: dict[str, dict[str, Any]]) -> None:
    init = services["kafka-init"]
    assert depends_on(init) == {"kafka": "service_healthy"}
    assert init.get("restart", "no") == "no"
    assert init["entrypoint"][0] in ("/bin/bash", "/bin/sh") and init["entrypoint"][-1].endswith("c")
    script = "\n".join(init["command"])
    # Shell variables assigned in the script (after compose turned `$$` into `$`), e.g. kt=/opt/...
    variables = dict(re.findall(r"^\s*([A-Za-z_]\w*)=(\S+)\s*$", script, flags=re.MULTILINE))
    creates = [line for line in script.splitlines() if "--create" in line]
    assert creates
    created: dict[str, tuple[int, int, dict[str, str]]] = {}
    for line in creates:
        argv = shlex.split(re.sub(r'"?\$\{?(\w+)\}?"?', lambda m: variables.get(m[1], m[0]), line))
        assert argv[0] == "/opt/kafka/bin/kafka-topics.sh", line
        assert "--if-not-exists" in argv, line
        options = {argv[i]: argv[i + 1] for i in range(1, len(argv) - 1) if argv[i].startswith("--")}
        assert options["--bootstrap-server"] == _internal_bootstrap(services)
        configs = dict(argv[i + 1].split("=", 1) for i in range(1, len(argv) - 1) if argv[i] == "--config")
        created[options["--topic"]] = (
            int(options["--partitions"]),
            int(options["--replication-factor"]),
            configs,
        )
    assert {name: parts for name, (parts, _, _) in created.items()} == EXPECTED_TOPICS
    # Same table as the local stack's (trialwatch.devstack.topics), configs included.
    assert created == {t.name: (t.partitions, t.replication, dict(t.configs)) for t in topics.TOPICS}


# ---------------------------------------------------------------------------------------------------
# PostgreSQL and migrations


def test_postgres_has_a_pg_isready_healthcheck(raw: dict[str, Any], services: dict[str, Any]) -> None:
    postgres = services["postgres"]
    assert "pg_isready" in probe_text(postgres)
    env = env_of(postgres)
    assert env["POSTGRES_DB"] == "trialwatch"  # §5: database `trialwatch`
    assert env["POSTGRES_USER"] == envfile.PG_USER
    assert REQUIRED_REF.fullmatch(env_of(raw["services"]["postgres"])["POSTGRES_PASSWORD"])
    assert "POSTGRES_HOST_AUTH_METHOD" not in env
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])


def test_migrate_runs_alembic_once_after_postgres(services: dict[str, dict[str, Any]]) -> None:
    migrate = services["migrate"]
    assert migrate["command"] == ["alembic", "-c", "deploy/alembic.ini", "upgrade", "head"]
    assert paths.ALEMBIC_INI == REPO / "deploy" / "alembic.ini"  # where the devstack looks too
    assert depends_on(migrate) == {"postgres": "service_healthy"}
    assert migrate.get("restart", "no") == "no"
    assert "DATABASE_URL" in env_of(migrate)


# ---------------------------------------------------------------------------------------------------
# App services


@pytest.mark.parametrize("name", APPS)
def test_app_waits_for_healthy_infra_and_completed_one_shots(services: dict[str, dict[str, Any]], name: str) -> None:
    assert depends_on(services[name]) == {
        "kafka": "service_healthy",
        "postgres": "service_healthy",
        "kafka-init": "service_completed_successfully",
        "migrate": "service_completed_successfully",
    }


def test_dependency_conditions_are_satisfiable(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for dependency, condition in depends_on(service).items():
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits on {dependency}'s health"
            if condition == "service_completed_successfully":
                assert services[dependency].get("restart", "no") == "no", f"{dependency} must exit"
                assert "healthcheck" not in services[dependency]


@pytest.mark.parametrize("name", APPS)
def test_app_healthcheck_probes_healthz_on_its_own_port(services: dict[str, dict[str, Any]], name: str) -> None:
    service = services[name]
    port = int(env_of(service)[HTTP_PORT_VAR[name]])
    assert port in {int(p["target"]) for p in service["ports"]}
    assert f"http://127.0.0.1:{port}/healthz" in probe_text(service)
    assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL")
    for key in ("interval", "timeout", "retries"):
        assert key in service["healthcheck"], f"{name}: healthcheck.{key}"


@pytest.mark.parametrize("name", APPS)
def test_app_environment_matches_the_env_file_and_the_wiring(
    raw: dict[str, Any], services: dict[str, dict[str, Any]], fake_env: dict[str, str], name: str
) -> None:
    service = services[name]
    env = env_of(service)
    assert "env_file" not in service  # .env's 127.0.0.1 addresses are wrong inside a container
    local_names = set(envfile.defaults("dev"))
    for var in APP_ENV:
        assert var in env, f"{name}: {var}"
        assert var in local_names, f"{var} is not a variable of the local env file"
    assert env["TRIALWATCH_KAFKA_BOOTSTRAP"] == _internal_bootstrap(services)
    for var, port in (
        ("TRIALWATCH_INGEST_PORT", 8081),
        ("TRIALWATCH_MLLP_PORT", 2575),
        ("TRIALWATCH_RULES_PORT", 8082),
        ("TRIALWATCH_NOTIFIER_PORT", 8083),
    ):
        assert env[var] == str(port), f"{name}: {var} (container side is the §5 default)"
    # DATABASE_URL reaches the compose postgres with its own credentials.
    pg = env_of(services["postgres"])
    url = urlsplit(env["DATABASE_URL"])
    assert url.scheme == "postgresql+asyncpg"
    assert (url.hostname, url.port) == ("postgres", int(services["postgres"]["ports"][0]["target"]))
    assert url.path == "/" + pg["POSTGRES_DB"]
    assert url.username == pg["POSTGRES_USER"]
    assert url.password == pg["POSTGRES_PASSWORD"] == fake_env["TRIALWATCH_PG_PASSWORD"]
    raw_password = url_password(env_of(raw["services"][name])["DATABASE_URL"])
    assert raw_password is not None and REQUIRED_REF.fullmatch(raw_password)
    assert env["TRIALWATCH_TOKEN"] == fake_env["TRIALWATCH_TOKEN"]


@pytest.mark.parametrize("name", APPS)
def test_app_command_names_its_service_module(services: dict[str, dict[str, Any]], name: str) -> None:
    command = services[name]["command"]
    assert command == ["python", "-m", f"services.{name}"]
    package = REPO / "services" / name
    assert (package / "__init__.py").is_file(), f"services/{name}/ is not a package"
    main = package / "__main__.py"
    if main.exists():  # once the service is written, `python -m` must find its entry point
        assert main.is_file()
    include = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"]["find"]
    assert any(re.fullmatch(p.replace("*", ".*"), f"services.{name}") for p in include["include"])


# ---------------------------------------------------------------------------------------------------
# The SMTP sink (INTERFACES §5, issue #5) and the notifier's mail to it


def test_smtp_sink_runs_its_module_on_the_app_image_after_the_database(services: dict[str, dict[str, Any]]) -> None:
    sink = services["smtp-sink"]
    assert sink["command"] == ["python", "-m", "services.smtp_sink"]
    assert (REPO / "services" / "smtp_sink" / "__main__.py").is_file()
    assert sink["image"] == services["notifier"]["image"] and sink["build"] == services["notifier"]["build"]
    # It stores what it receives in PostgreSQL (smtp_sink.message, created by the migrations).
    assert depends_on(sink) == {"postgres": "service_healthy", "migrate": "service_completed_successfully"}
    assert urlsplit(env_of(sink)["DATABASE_URL"]).hostname == "postgres"


def test_smtp_sink_listens_on_the_section5_port_and_probes_its_health_port(
    services: dict[str, dict[str, Any]],
) -> None:
    sink = services["smtp-sink"]
    env = env_of(sink)
    (port,) = sink["ports"]
    assert env["TRIALWATCH_SMTP_PORT"] == str(port["target"]) == "1025"
    health = env["TRIALWATCH_SMTP_HEALTH_PORT"]
    assert health != env["TRIALWATCH_SMTP_PORT"]
    assert int(health) not in {int(p["target"]) for p in sink["ports"]}  # probed inside, never published
    assert f"http://127.0.0.1:{health}/healthz" in probe_text(sink)
    assert env["TRIALWATCH_BIND_HOST"] == "0.0.0.0"  # inside the container; the host side is 127.0.0.1


def test_the_notifier_mails_the_sink_and_links_to_its_published_port(
    raw: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    env = env_of(services["notifier"])
    assert env["TRIALWATCH_SMTP_HOST"] == "smtp-sink" and env["TRIALWATCH_SMTP_HOST"] in services
    assert env["TRIALWATCH_SMTP_PORT"] == env_of(services["smtp-sink"])["TRIALWATCH_SMTP_PORT"]
    public = env_of(raw["services"]["notifier"])["TRIALWATCH_NOTIFIER_PUBLIC_URL"]
    assert interpolate_text(public, {}) == "http://127.0.0.1:8083"
    assert interpolate_text(public, {"TRIALWATCH_NOTIFIER_PORT": "28083"}) == "http://127.0.0.1:28083"


# ---------------------------------------------------------------------------------------------------
# Secrets


def test_no_literal_secrets(raw: dict[str, Any], required_vars: set[str]) -> None:
    for name, service in raw["services"].items():
        for var, value in env_of(service).items():
            if SECRET_NAME.search(var):
                assert REQUIRED_REF.fullmatch(value), f"{name}.{var} must be ${{VAR:?...}}, not a literal"
            if "://" in value and "@" in value:
                secret = url_password(value)
                assert not secret or REQUIRED_REF.fullmatch(secret), f"{name}.{var}: literal password"
    # No secret variable gets a default anywhere (${SECRET:-x}, ${SECRET-x}, ${SECRET:+x}).
    for text in strings(raw):
        for match in re.finditer(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-+])", text):
            assert not SECRET_NAME.search(match[1]), f"{match[0]}: a secret with a default"
    # Compose can only require secrets: the rest must run on defaults.
    assert required_vars, "secrets must come from ${VAR:?...}"
    assert all(SECRET_NAME.search(var) for var in required_vars), required_vars
    assert {"TRIALWATCH_PG_PASSWORD", "TRIALWATCH_TOKEN"} <= required_vars
    assert required_vars <= set(envfile.defaults("dev")), "required secrets the env file does not make"


def test_compose_refuses_to_start_without_the_secrets(raw: dict[str, Any], fake_env: dict[str, str]) -> None:
    with pytest.raises(MissingVariableError):
        interpolate(raw, {})
    for missing in fake_env:
        partial = {k: v for k, v in fake_env.items() if k != missing}
        with pytest.raises(MissingVariableError, match=missing):
            interpolate(raw, partial)


def test_interpolation_helper_follows_the_compose_rules() -> None:
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate_text("$$SET ${SET} $SET", env) == "$SET x x"
    assert interpolate_text("${UNSET:-d} ${EMPTY:-d} ${EMPTY-d}", env) == "d d "
    assert interpolate_text("${SET:+y}${UNSET:+y}", env) == "y"
    with pytest.raises(MissingVariableError):
        interpolate_text("${EMPTY:?need it}", env)
    with pytest.raises(ValueError, match="invalid interpolation"):
        interpolate_text("$(oops)", env)


def test_secrets_stay_out_of_git_and_images() -> None:
    gitignored = GITIGNORE.read_text(encoding="utf-8").split()
    assert ".env" in gitignored
    assert dockerignored(".env") and dockerignored(".env.test")
    for path in (".venv/bin/python", "var/dev/pg/postgresql.conf", ".git/config", "tests/conftest.py"):
        assert dockerignored(path), path


# ---------------------------------------------------------------------------------------------------
# Dockerfile and .dockerignore


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    assert not pending, "dangling line continuation"
    return instructions


def _dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        regex = ""
        for part in re.split(r"(\*\*/|\*\*|\*|\?)", pattern):
            regex += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(part, re.escape(part))
        rules.append((negate, re.compile(regex + "(?:/.*)?")))
    return rules


def dockerignored(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern also covers everything below it."""
    excluded = False
    for negate, regex in _dockerignore_rules():
        if regex.fullmatch(path):
            excluded = not negate
    return excluded


def test_dockerfile_builds_a_slim_runtime_image_as_non_root(dockerfile: list[tuple[str, str]]) -> None:
    froms = [args for keyword, args in dockerfile if keyword == "FROM"]
    assert froms == ["python:3.11-slim"]
    runs = " ; ".join(args for keyword, args in dockerfile if keyword == "RUN")
    assert re.search(r"\bpip install -c constraints\.txt \.(?:\s|$)", runs), runs
    assert "[dev]" not in runs and not re.search(r"pip install[^;&]* -e\b", runs)
    users = [args for keyword, args in dockerfile if keyword == "USER"]
    assert users, "the image must drop root"
    assert users[-1].split(":")[0] not in ("root", "0")
    # The instruction after the last USER may not switch back; nothing runs as root at the end.
    last_user = max(i for i, (keyword, _) in enumerate(dockerfile) if keyword == "USER")
    assert all(keyword != "RUN" for keyword, _ in dockerfile[last_user + 1 :])
    cmd = [args for keyword, args in dockerfile if keyword == "CMD"]
    scripts = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["scripts"]
    assert len(cmd) == 1 and json.loads(cmd[0])[0] in {*scripts, "python"}


def test_dockerfile_copies_what_the_install_and_the_services_need(dockerfile: list[tuple[str, str]]) -> None:
    sources = set()
    for keyword, args in dockerfile:
        if keyword == "COPY":
            parts = [p for p in args.split() if not p.startswith("--")]
            sources.update(p.rstrip("/") for p in parts[:-1])
    include = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"]["find"]
    packages = {pattern.rstrip("*").rstrip(".") for pattern in include["include"]}
    readme = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["readme"]
    needed = {"pyproject.toml", "constraints.txt", readme, "deploy", *packages}
    assert needed <= sources, f"not copied: {needed - sources}"
    for source in sources:
        assert (REPO / source).exists(), f"COPY {source}: no such path in the repo"
        assert not dockerignored(source), f"COPY {source} but .dockerignore excludes it"
    # The files inside them that the containers run.
    for path in ("deploy/alembic.ini", "services/ingest/__main__.py", "shared/events/envelope.py"):
        assert not dockerignored(path), path
