"""The contract JSON the ruby filter reads is generated from mlmon_logging/contract.py and up to date."""

from __future__ import annotations

import json

from mlmon.ingest.spec import SPEC_PATH, render_spec
from mlmon_logging import contract


def test_committed_contract_json_is_up_to_date() -> None:
    assert SPEC_PATH.read_text(encoding="utf-8") == render_spec(), \
        "stale: run `python -m mlmon.ingest.spec --write` and commit logstash/ruby/mlmon_contract.json"


def test_contract_json_carries_every_contract_field_and_family() -> None:
    spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    assert set(spec["fields"]) == {f.name for f in contract.FIELDS if f.name != "labels"}
    assert set(spec["families"]) == {fam.prefix.rstrip(".") for fam in contract.FAMILIES}
    assert spec["fields"]["@timestamp"]["required_in"] == list(contract.KINDS)


def test_pipeline_references_the_script_and_contract_it_ships() -> None:
    from mlmon.core import assets as paths
    conf = (paths.LOGSTASH / "pipeline" / "mlmon-events.conf").read_text(encoding="utf-8")
    assert "/usr/share/logstash/mlmon/mlmon_event.rb" in conf
    assert "/usr/share/logstash/mlmon/mlmon_contract.json" in conf
    assert (paths.LOGSTASH / "ruby" / "mlmon_event.rb").is_file()
