"""Every dead letter gets its own ``_id``, and the expected 409s stay out of the error log.

When the ruby filter raises, the event has no ``event.id``: the fingerprint filter then
sets nothing and ``document_id`` would stay the literal ``%{[@metadata][mlmon][doc_id]}``
for every such event, so all but the first would be refused 409 - and the elasticsearch
output drops 409s instead of sending them to the dead letter queue. Checked on the parse
tree of Logstash's own grammar (``tools.logstash_grammar``).
"""

from __future__ import annotations

import re

from parsimonious.nodes import Node

from mlmon.core import assets as paths
from tools.logstash_grammar import LOGSTASH_GRAMMAR

EVENTS = paths.LOGSTASH / "pipeline" / "mlmon-events.conf"
DLQ = paths.LOGSTASH / "pipeline" / "mlmon-dlq.conf"


def _nodes(node: Node, rule: str) -> list[Node]:
    found = [node] if node.expr_name == rule else []
    for child in node.children:
        found += _nodes(child, rule)
    return found


def _plugins(text: str) -> list[tuple[str, str]]:
    """(name, body) of every plugin in a config, nested ones included."""
    tree = LOGSTASH_GRAMMAR.parse(text)
    return [(p.children[0].text, p.text) for p in _nodes(tree, "plugin")]


def test_the_script_failure_branch_gives_each_dead_letter_its_own_id() -> None:
    tree = LOGSTASH_GRAMMAR.parse(EVENTS.read_text())
    branches = [b for b in _nodes(tree, "if_branch") if "![@metadata][mlmon][index]" in b.text.split("{", 1)[0]]
    assert len(branches) == 1, "the branch for events the ruby filter could not route is gone"
    plugins = [(p.children[0].text, p.text) for p in _nodes(branches[0], "plugin")]
    unique = [body for name, body in plugins if name == "uuid"]
    assert unique, "no per-event id for dead letters without event.id"
    assert re.search(r'target\s*=>\s*"\[@metadata\]\[mlmon\]\[doc_id\]"', unique[0])
    assert re.search(r"overwrite\s*=>\s*true", unique[0])


def test_expected_conflicts_are_not_logged_as_errors() -> None:
    for conf in (EVENTS, DLQ):
        outputs = [body for name, body in _plugins(conf.read_text()) if name == "elasticsearch"]
        assert outputs and all('"version_conflict_engine_exception"' in body and "silence_errors_in_log" in body
                               for body in outputs), conf.name


def test_the_dead_letter_queue_reader_deletes_what_it_replayed() -> None:
    inputs = [body for name, body in _plugins(DLQ.read_text()) if name == "dead_letter_queue"]
    assert inputs and re.search(r"clean_consumed\s*=>\s*true", inputs[0])
    assert re.search(r"commit_offsets\s*=>\s*true", inputs[0])  # clean_consumed needs it
