"""docker-compose.yml as Compose resolves it: merge keys, interpolation defaults, mounts, secrets.

YAML merge keys (``<<: *anchor``) are shallow: a service that sets its own ``environment:``
or ``volumes:`` replaces the anchor's whole value. PyYAML resolves merges exactly so; these
tests read the file that way and check what each service really gets.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ES_INIT = ROOT / "docker/es-init.sh"
MLMON_IMAGE = "mlmon:local"
#: What every mlmon service needs to reach the secured cluster (mlmon.stores.elasticsearch.client).
MLMON_ENV = ("MLMON_ES_URL", "MLMON_ES_CA_CERTS", "MLMON_ES_USERNAME", "MLMON_ES_PASSWORD")


def resolved(path: Path | None = None) -> dict[str, Any]:
    loaded = yaml.safe_load((path or COMPOSE).read_text())  # SafeLoader applies << merges as Compose does
    assert isinstance(loaded, dict)
    return loaded


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` with the given environment."""
    env = env or {}

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"] or ""
        if env.get(name):
            return env[name]
        return arg if op == ":-" else ""
    return re.sub(r"\$\{(?P<name>[A-Z_]+)(?:(?P<op>:-|:\?)(?P<arg>[^}]*))?\}", one, value)


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (volume name or host path) of a service's short-syntax volumes."""
    out: dict[str, str] = {}
    for volume in service.get("volumes", []):
        source, target, *_ = str(volume).split(":")
        out[target] = source
    return out


def mlmon_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in compose["services"].items() if svc.get("image") == MLMON_IMAGE}


def test_every_mlmon_service_gets_the_connection_settings_and_the_ca() -> None:
    services = mlmon_services(resolved())
    assert {"setup", "jobs", "demo-model"} <= set(services)
    for name, svc in services.items():
        env = svc.get("environment") or {}
        missing = [k for k in MLMON_ENV if k not in env]
        assert not missing, f"{name}: environment lacks {missing} (a service's own environment: replaces the anchor's)"
        ca = env["MLMON_ES_CA_CERTS"]
        mounted = {target: source for target, source in mounts(svc).items() if ca.startswith(target + "/")}
        assert mounted, f"{name}: {ca} is not on any mounted volume"
        assert set(mounted.values()) == {"certs-ca"}, f"{name}: the CA comes from {mounted}"


def test_the_demo_model_reaches_logstash_and_runs_its_script() -> None:
    demo = resolved()["services"]["demo-model"]
    assert demo["environment"]["LOGSTASH_TCP"] == "logstash:5044"
    assert demo["entrypoint"] == ["mlmon-demo-model"]
    script = (ROOT / "docker/demo-model.sh").read_text()
    # Every variable the script needs without a default is set by the service.
    needed = set(re.findall(r"\$\{([A-Z_]+)\}", script))
    assert needed <= set(demo["environment"]), sorted(needed - set(demo["environment"]))


def test_the_old_demo_service_shape_is_caught() -> None:
    """The shape that lost the anchor's settings (own environment/volumes) fails the check above."""
    text = COMPOSE.read_text()
    broken = text.replace("""    environment:
      <<: *mlmon-env
      MLMON_ES_USERNAME: mlmon_jobs
      MLMON_ES_PASSWORD: ${MLMON_JOBS_PASSWORD}
      LOGSTASH_TCP""", """    environment:
      LOGSTASH_TCP""")
    assert broken != text
    env = yaml.safe_load(broken)["services"]["demo-model"]["environment"]
    assert "MLMON_ES_URL" not in env


#: Certificate volumes each service may mount; the CA key (certs-authority) only where certificates are made.
CERT_VOLUMES = {
    "es-init": {"certs-authority", "certs-ca", "certs-elasticsearch", "certs-logstash"},
    "elasticsearch": {"certs-ca", "certs-elasticsearch"},
    "logstash": {"certs-ca", "certs-logstash"},
    # Prometheus and Alertmanager talk to no TLS service of the stack.
    "prometheus": set(),
    "alertmanager": set(),
}


def test_each_service_mounts_only_its_own_key_and_the_ca_certificate() -> None:
    compose = resolved()
    assert set(compose["volumes"]) >= {"certs-authority", "certs-ca", "certs-elasticsearch", "certs-logstash"}
    assert "certs" not in compose["volumes"], "one shared certificate volume puts every key everywhere"
    for name, svc in compose["services"].items():
        certs = {source for source in mounts(svc).values() if source.startswith("certs")}
        assert certs == CERT_VOLUMES.get(name, {"certs-ca"}), name
        for target, source in mounts(svc).items():
            if source.startswith("certs") and name != "es-init":
                assert any(str(v).endswith(":ro") for v in svc["volumes"] if str(v).split(":")[1] == target), \
                    f"{name} mounts {source} writable"


def test_es_init_keeps_keys_private_and_is_healthy_only_after_setting_modes() -> None:
    script = ES_INIT.read_text()
    lines = script.splitlines()
    ready = next(i for i, line in enumerate(lines) if re.match(r'\s*touch "\$ready"', line))
    modes = [i for i, line in enumerate(lines) if re.match(r"\s*(chmod|chown)\b", line)]
    assert modes and max(modes) < ready, "the health marker must be written after the last chmod/chown"
    assert "chmod 644" not in script.replace("-name '*.crt' -exec chmod 644", ""), "only certificates are 644"
    assert ".zip" not in re.sub(r'"\$work/[^"]*\.zip"', "", script), "certutil zips (with keys) must stay in $work"
    health = resolved()["services"]["es-init"]["healthcheck"]["test"][1]
    assert ".certs-ready" in health


def _run_es_init(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/bash", str(ES_INIT)], capture_output=True, text=True, timeout=30,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env})


def _example_env() -> dict[str, str]:
    return dict(re.findall(r"^([A-Z_]+)=(.*)$", (ROOT / ".env.example").read_text(), re.M))


def test_es_init_refuses_the_placeholder_secrets() -> None:
    proc = _run_es_init(_example_env())
    assert proc.returncode == 1
    assert "ELASTIC_PASSWORD" in proc.stderr and "openssl rand" in proc.stderr


@pytest.mark.parametrize("var", ["MLMON_JOBS_PASSWORD", "GRAFANA_ES_PASSWORD", "KIBANA_REPORTING_KEY"])
def test_es_init_refuses_each_placeholder_or_short_secret(var: str) -> None:
    good = {k: os.urandom(24).hex() for k, v in _example_env().items() if v.startswith("change-me")}
    for bad in ("change-me-" + "x" * 40, "short"):
        proc = _run_es_init({**good, var: bad})
        assert proc.returncode == 1 and f"es-init: {var} in .env" in proc.stderr, proc.stderr
    # Real secrets pass the check (the script then stops outside the Elasticsearch image).
    proc = _run_es_init(good)
    assert "in .env is missing" not in proc.stderr


def test_es_init_makes_the_grafana_user_with_its_read_only_role() -> None:
    script = ES_INIT.read_text()
    assert re.search(r'_security/user/mlmon_grafana \\\n\s+-d ".*GRAFANA_ES_PASSWORD.*\\"roles\\":\[\\"mlmon_grafana\\"\]', script)
    env = resolved()["services"]["es-init"]["environment"]
    assert str(env["GRAFANA_ES_PASSWORD"]).startswith("${GRAFANA_ES_PASSWORD:?")
    example = _example_env()
    assert example["GRAFANA_ES_PASSWORD"].startswith("change-me") and example["GRAFANA_ADMIN_PASSWORD"].startswith(
        "change-me")
    role = json.loads((ROOT / "elasticsearch" / "roles" / "mlmon_grafana.json").read_text())
    assert role["indices"] == [{"names": ["mlmon-metrics*"], "privileges": ["read", "view_index_metadata"]}]


def test_ports_are_published_on_the_loopback_interface_by_default() -> None:
    compose = resolved()
    published = [(name, interpolate(str(p))) for name, svc in compose["services"].items() for p in svc.get("ports", [])]
    assert published
    for name, port in published:
        assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
    # The plaintext, unauthenticated Logstash input never follows the TLS input's address.
    ports = compose["services"]["logstash"]["ports"]
    plain = next(p for p in ports if p.endswith(":5044"))
    assert interpolate(plain, {"LOGSTASH_TLS_BIND_ADDRESS": "0.0.0.0"}).startswith("127.0.0.1:")


def test_kibana_has_every_stable_key() -> None:
    env = resolved()["services"]["kibana"]["environment"]
    for key in ("XPACK_ENCRYPTEDSAVEDOBJECTS_ENCRYPTIONKEY", "XPACK_SECURITY_ENCRYPTIONKEY",
                "XPACK_REPORTING_ENCRYPTIONKEY"):
        assert str(env.get(key, "")).startswith("${KIBANA_"), key
