"""Watcher alert documents carry a rendered reason, never mustache text.

Watcher renders mustache in some action fields (the logging action's ``text``), never
inside a script's ``params``: a reason passed there as ``{{ctx.payload.hits.total}}`` is
stored literally. So each watch builds its reason in the transform's Painless from
``ctx.payload``; ``make test-stack`` executes a watch on a real cluster and reads the
document it produced (``tools.golden_stack --watch``).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from mlmon.stack import alert_assets

WATCHES = alert_assets.watcher_watches()


def _scripts(watch: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "script" in node and isinstance(node["script"], dict):
                found.append(node["script"])
            for value in node.values():
                walk(value)
    walk(watch)
    return found


@pytest.mark.parametrize("name", sorted(WATCHES))
def test_no_mustache_where_watcher_does_not_render_it(name: str) -> None:
    for script in _scripts(WATCHES[name]):
        assert "{{" not in script["source"], name
        for key, value in script.get("params", {}).items():
            assert "{{" not in str(value), f"{name}: script param {key} holds mustache, stored as literal text"


@pytest.mark.parametrize("name", sorted(WATCHES))
def test_the_alert_reason_is_built_from_the_payload(name: str) -> None:
    script = WATCHES[name]["actions"]["index_alert"]["transform"]["script"]
    used = set(re.findall(r"params\.(\w+)", script["source"]))
    assert used == set(script["params"]), name
    assert "'reason': reason" in script["source"]
    if "ctx.payload.hits.total" in WATCHES[name]["actions"]["log"]["logging"]["text"]:
        # What the log line says (mustache, rendered there) the document says too.
        assert "ctx.payload.hits.total" in script["source"], name
