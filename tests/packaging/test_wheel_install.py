"""The wheel as users get it: built from the sdist, installed into a clean venv, run outside the repository.

``pip install mlmon[elastic]`` then ``mlmon setup`` must find the Elasticsearch and
Kibana assets inside the installed package (``mlmon.core.assets`` through
``importlib.resources``), not in a checkout; and the wheel must carry the typing
markers and the assets but none of the repository's development files.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import REPO
from tests.support.fake_elastic import FakeElasticsearch, FakeKibana
from tests.support.fake_http import FakeServer

pytestmark = pytest.mark.slow

#: The shipped asset files, as the repository holds them (logstash/tests/ is not shipped).
SHIPPED = {
    "elasticsearch": ["*/*.json"],
    "kibana": ["*.ndjson", "rules/*.json", "rules/connectors/*.json"],
    "logstash": ["config/*", "pipeline/*", "ruby/*"],
    "prometheus": ["*.yml", "rules/mlmon.rules.yml"],
}
#: Development files that must stay in the repository.
DEV_ONLY = re.compile(r"^(tools|tests|benchmarks|scripts|typecheck|docs|docker)/|/logstash/tests/|"
                      r"(^|/)(golden|golden_stack|regen_golden|logstash_grammar|synth|conftest)\.py$")


def _run(args: list[str], *, timeout: float, **kwargs: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel ``python -m build`` makes: sdist first, then the wheel from the unpacked sdist (no build/ in the checkout)."""
    # `build` comes with the dev extra that `make test` installs: missing, this fails rather than skips.
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO)], timeout=300)
    wheels = list(out.glob("mlmon-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean venv (no system site-packages) with ``mlmon[elastic]`` installed from the wheel: its bin/."""
    venv = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", "--clear", str(venv)], timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "--only-binary=:all:"]
    _run([*pip, f"{wheel}[elastic]"], timeout=240)
    return venv / "bin"


@pytest.fixture
def outside(tmp_path: Path) -> dict[str, str]:
    """An environment that cannot see the checkout: no PYTHONPATH, no asset override, no ambient credentials."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "MLMON_ASSETS", "VIRTUAL_ENV") and not k.startswith("MLMON_")}
    assert not tmp_path.resolve().is_relative_to(REPO)
    return env


@pytest.fixture
def servers() -> Iterator[tuple[FakeServer, FakeServer]]:
    """A fake Elasticsearch on a trial licence (so watches count too) and a fake Kibana, empty."""
    with FakeServer(FakeElasticsearch(licence="trial")) as es, FakeServer(FakeKibana()) as kibana:
        yield es, kibana


def test_the_wheel_carries_the_assets_and_typing_markers_but_no_development_files(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"mlmon/py.typed", "mlmon_logging/py.typed", "mlmon/cli/main.py", "mlmon/core/assets.py"} <= names
    assert {f"mlmon_logging/{p.name}" for p in (REPO / "mlmon_logging").glob("*.pyi")} <= names, "type stubs"
    expected = {f"mlmon/assets/{folder}/{p.relative_to(REPO / folder).as_posix()}"
                for folder, globs in SHIPPED.items() for g in globs for p in (REPO / folder).glob(g) if p.is_file()}
    assert len(expected) > 50
    assert expected - names == set(), "asset files missing from the wheel"
    assert {n for n in names if n.startswith("mlmon/assets/")} == expected, "unexpected files under mlmon/assets/"
    assert sorted(n for n in names if DEV_ONLY.search(n)) == []
    dist_info = "-".join(wheel.name.split("-")[:2]) + ".dist-info"
    assert {n.split("/", 1)[0] for n in names} == {"mlmon", "mlmon_logging", dist_info}
    metadata = zipfile.ZipFile(wheel).read(f"{dist_info}/METADATA").decode()
    assert "License-Expression: Apache-2.0" in metadata and f"{dist_info}/licenses/LICENSE" in names
    base = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert sorted(re.split(r"[<>=!~ ;]", line.split(": ", 1)[1])[0] for line in base) == \
        ["orjson", "python-json-logger", "structlog"], "the emitter's install must stay light"


def test_installed_mlmon_setup_dry_run_reads_the_shipped_assets(installed: Path, outside: dict[str, str],
                                                                 servers: tuple[FakeServer, FakeServer],
                                                                 tmp_path: Path) -> None:
    es, kibana = servers
    python = str(installed / "python")
    where = _run([python, "-c", "from mlmon.core import assets as a; print(a.ELASTICSEARCH, a.KIBANA, a.IN_CHECKOUT)"],
                 timeout=60, cwd=tmp_path, env=outside).stdout.split()
    site = (installed.parent / "lib").resolve()
    assert [Path(where[0]).resolve().is_relative_to(site), Path(where[1]).resolve().is_relative_to(site), where[2]] == \
        [True, True, "False"], f"the installed mlmon reads its assets from {where}"

    proc = _run([str(installed / "mlmon"), "setup", "--es", es.url, "--kibana", kibana.url, "--dry-run"],
                timeout=120, cwd=tmp_path, env=outside)
    out = proc.stdout
    for what, folder in (("ILM policy", "ilm"), ("component template", "component_templates"),
                         ("index template", "index_templates"), ("role", "roles"), ("watch", "watcher")):
        names = sorted(p.stem for p in (REPO / "elasticsearch" / folder).glob("*.json"))
        assert names, folder
        assert sorted(re.findall(rf"would create  {what} (\S+)", out)) == names, f"{what}s:\n{out}"
    assert re.search(r"saved objects mlmon\.ndjson \(\d+ of \d+ objects differ\)", out), out
    rules = list((REPO / "kibana" / "rules").glob("*.json"))
    connectors = list((REPO / "kibana" / "rules" / "connectors").glob("*.json"))
    assert len(re.findall(r"would create  rule ", out)) == len(rules) > 0, out
    assert len(re.findall(r"would create  connector ", out)) == len(connectors) > 0, out
    assert re.search(r"dry run: (\d+) of \1 assets would change", out), out
    assert es.writes() == [], "a dry run must not write"

    # The generators write the repository's folders: from an installed copy they refuse, in one line.
    refused = subprocess.run([python, "-m", "mlmon.stack.elasticsearch_assets"], capture_output=True, text=True,
                             timeout=60, cwd=tmp_path, env=outside)
    assert refused.returncode == 1 and refused.stdout == "", refused
    assert len(refused.stderr.splitlines()) == 1 and "installed copy" in refused.stderr, refused.stderr
