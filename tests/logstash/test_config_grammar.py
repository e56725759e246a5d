"""Every committed .conf parses under Logstash's grammar; the checker rejects what Logstash rejects."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlmon.core import assets as paths
from tools.logstash_grammar import check_file, check_text

CONFS = sorted((paths.LOGSTASH / "pipeline").glob("*.conf"))


def test_there_are_pipeline_configs() -> None:
    assert {p.name for p in CONFS} >= {"mlmon-events.conf", "mlmon-dlq.conf"}


@pytest.mark.parametrize("conf", CONFS, ids=lambda p: p.name)
def test_committed_config_is_accepted(conf: Path) -> None:
    assert check_file(conf) == []


VALID = {
    "minimal": "input { stdin {} } output { stdout {} }",
    "comments_and_codec_plugin": "# hi\ninput {\n  tcp { port => 5044 codec => line { charset => \"UTF-8\" } } # tail\n}\n",
    "conditionals": """filter {
        if [a][b] == "x" and [c] =~ /^foo\\/bar$/ { drop {} }
        else if "tag" in [tags] or [n] >= 3 { mutate { add_tag => ["t"] } }
        else if !([x] != 'y') { }
        else if [k] not in ["a", "b"] { }
        else { ruby { code => 'event.set("x", 1)' } }
      }""",
    "hash_and_arrays": 'filter { mutate { add_field => { "a" => "b" 3 => [1, -2.5, "c"] } } }',
    "nested_branch": "output { if [x] { if [y] { stdout {} } } }",
}

INVALID = {
    "unbalanced_open": "input { stdin { }",
    "unbalanced_close": "input { stdin { } } }",
    "unknown_section": "inputs { stdin {} }",
    "plugin_outside_section": "stdin {}",
    "missing_arrow": 'filter { mutate { add_tag "x" } }',
    "single_equals": 'filter { mutate { add_tag = "x" } }',
    "unterminated_string": 'filter { mutate { add_tag => "x } }',
    "unterminated_single_quote": "filter { ruby { code => 'x } }",
    "attributes_without_whitespace": 'filter { mutate { a => "x"b => "y" } }',
    "regex_operator_needs_regex_or_string": "filter { if [a] =~ foo { drop {} } }",
    "triple_equals": 'filter { if [a] === "b" { drop {} } }',
    "assignment_in_condition": 'filter { if [a] = "b" { drop {} } }',
    "empty_condition": "filter { if { drop {} } }",
    "unbalanced_regex_group": "filter { if [a] =~ /(foo/ { drop {} } }",
    "unterminated_regex": "filter { if [a] =~ /foo { drop {} } }",
    "else_without_if": "filter { else { drop {} } }",
    "comma_in_selector": "filter { if [a,b] { drop {} } }",
    "empty_config": "",
}


@pytest.mark.parametrize("name", VALID)
def test_accepts_valid_logstash_syntax(name: str) -> None:
    assert check_text(VALID[name]) == []


@pytest.mark.parametrize("name", INVALID)
def test_rejects_invalid_logstash_syntax(name: str) -> None:
    errors = check_text(INVALID[name], "x.conf")
    assert errors, f"{name} should be rejected"
    assert str(errors[0]).startswith("x.conf:1:")


def test_error_points_at_the_section_that_does_not_parse() -> None:
    # A PEG reports where the top rule stopped: the start of the failing section.
    errors = check_text('input {\n  stdin {}\n}\nfilter {\n  mutate { add_tag "x" }\n}\n', "p.conf")
    assert (errors[0].line, errors[0].column) == (4, 1)
