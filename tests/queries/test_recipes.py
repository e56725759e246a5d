"""docs/queries.md: every recipe parses, names only mapped fields, and its DSL type-checks.

The blocks are read out of the Markdown itself, so the documentation and this
test cannot drift apart.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from mlmon.stack.kibana import checks, mappings
from tests.support import REPO

DOC = REPO / "docs" / "queries.md"
_BLOCK = re.compile(r"```console\n(.*?)```", re.S)
_TRIPLE = re.compile(r'"""(.*?)"""', re.S)
_ESQL_STRING = re.compile(r'"(?:\\.|[^"\\])*"')
_ESQL_FIELD = re.compile(r"(?<![\w.@-])(@timestamp|[A-Za-z_][\w]*(?:\.[\w]+)+)(?![\w(])")
RANGE_TYPES = checks.NUMERIC | checks.DATES


@dataclass(frozen=True)
class Recipe:
    label: str
    api: str              # "search" or "esql.query"
    indices: tuple[str, ...]
    body: dict[str, Any]


def _api(path: str) -> tuple[str, tuple[str, ...]]:
    path = path.split("?")[0].lstrip("/")
    if path == "_query":
        return "esql.query", ()
    target, _, endpoint = path.rpartition("/")
    if endpoint != "_search":
        raise AssertionError(f"unexpected endpoint {path!r} in {DOC.name}")
    return "search", tuple(target.split(","))


def recipes() -> list[Recipe]:
    text = DOC.read_text(encoding="utf-8")
    found: list[Recipe] = []
    heading = ""
    pos = 0
    for m in _BLOCK.finditer(text):
        headings = re.findall(r"^## (.+)$", text[pos:m.start()], re.M)
        heading = headings[-1] if headings else heading
        pos = m.end()
        request, _, body = m.group(1).partition("\n")
        method, path = request.split()
        assert method in {"GET", "POST"}, request
        # Console's triple-quoted strings (used for ES|QL) become ordinary JSON strings.
        body = _TRIPLE.sub(lambda t: json.dumps(" ".join(t.group(1).split())), body)
        api, indices = _api(path)
        found.append(Recipe(f"{heading} [{api} #{len(found)}]", api, indices, json.loads(body)))
    return found


RECIPES = recipes()


def test_every_recipe_the_issue_asks_for_is_there() -> None:
    headings = {r.label.split(" [")[0] for r in RECIPES}
    assert headings == {
        "Worst-drifting features this week", "Metrics in alert now", "Predictions of a segment",
        "Unlabelled predictions older than a day", "Label coverage per day", "Dead letters by reason",
        "Latency percentiles per model version",
    }
    for heading in headings:  # each in both languages
        assert {r.api for r in RECIPES if r.label.startswith(heading)} == {"search", "esql.query"}, heading


def _dsl_uses(node: Any) -> Iterator[tuple[str, str]]:
    """(field, use) pairs in a search body: queries, aggregations, sort and _source."""
    if isinstance(node, list):
        for item in node:
            yield from _dsl_uses(item)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key in {"term", "terms", "range"} and isinstance(value, dict) and "field" not in value:
            for name in value:
                yield name, "range" if key == "range" else "term"
        elif key in {"terms", "max", "min", "avg", "sum", "percentiles", "date_histogram"} and isinstance(value, dict):
            op = {"avg": "average", "percentiles": "percentile"}.get(key, key)
            yield value["field"], op
            yield from _dsl_uses({k: v for k, v in value.items() if k != "field"})
        elif key == "multi_terms":
            for t in value["terms"]:
                yield t["field"], "terms"
        elif key == "sort":
            for s in value:
                for name in s:
                    yield name, "sort"
        elif key == "_source":
            for name in value.get("includes", []):
                yield name, "source"
        elif key == "exists":
            yield value["field"], "column"
        else:
            yield from _dsl_uses(value)


def _esql_uses(query: str) -> tuple[tuple[str, ...], list[str]]:
    source, _, rest = query.partition("|")
    indices = tuple(i.strip() for i in source.strip().removeprefix("FROM").split(","))
    return indices, _ESQL_FIELD.findall(_ESQL_STRING.sub('""', "|" + rest))


def _types(field_mappings: mappings.Mappings, indices: tuple[str, ...], name: str) -> list[str]:
    """Types of ``name`` (a glob for _source includes) in every listed index that maps it."""
    found: list[str] = []
    for index in indices:
        ft = field_mappings.for_pattern(index)
        if any(ch in name for ch in "*?"):
            found += [t for f, t in ft.static.items() if fnmatch.fnmatchcase(f, name)]
            found += [t for glob, t in ft.dynamic if fnmatch.fnmatchcase(glob, name) or glob.startswith(name.rstrip("*"))]
        elif (t := ft.type_of(name)) is not None:
            found.append(t)
    return found


@pytest.fixture(scope="module")
def field_mappings() -> mappings.Mappings:
    return mappings.load()


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.label)
def test_recipe_names_only_mapped_fields_of_fitting_type(recipe: Recipe, field_mappings: mappings.Mappings) -> None:
    if recipe.api == "esql.query":
        indices, names = _esql_uses(recipe.body["query"])
        uses = [(n, "column") for n in names]
    else:
        indices, uses = recipe.indices, list(_dsl_uses(recipe.body))
    assert uses, "a recipe that names no field checks nothing"
    problems = []
    for name, use in uses:
        types = _types(field_mappings, indices, name)
        if not types:
            problems.append(f"{name!r} is not mapped in {indices}")
            continue
        suitable = RANGE_TYPES if use == "range" else checks.SUITABLE.get(use)
        if suitable is not None and not set(types) & suitable:
            problems.append(f"{use} on {name!r}, which is {types}")
    assert problems == []


def test_esql_field_scanner_sees_fields_not_literals_or_aliases() -> None:
    indices, names = _esql_uses('FROM a-*, b-* | WHERE x.y == "p.q" | STATS worst = MAX(metric.value) BY @timestamp')
    assert indices == ("a-*", "b-*")
    assert names == ["x.y", "metric.value", "@timestamp"]


def test_dsl_bodies_typecheck_against_the_elasticsearch_spec() -> None:
    estypes = pytest.importorskip("tests.support.estypes", reason="type-check harness not written yet")
    estypes.assert_bodies_typecheck([(r.api, r.body, r.label) for r in RECIPES])


_ESQL_AGO = re.compile(r"NOW\(\) - (\d+) (minute|hour|day)s?")
_DSL_AGO = re.compile(r"now-(\d+)([mhd])\b")
_HOURS = {"minute": 1 / 60, "hour": 1, "day": 24, "m": 1 / 60, "h": 1, "d": 24}


def test_the_unlabelled_predictions_recipes_group_a_bounded_slice() -> None:
    """Grouping by prediction id holds one group per id: the recipes must bound the ids to one model
    and a look-back of about a day (an 8-day range trips the request circuit breaker on a busy model)."""
    unlabelled = [r for r in RECIPES if r.label.startswith("Unlabelled predictions older than a day")]
    assert {r.api for r in unlabelled} == {"search", "esql.query"}
    for recipe in unlabelled:
        text = recipe.body["query"] if recipe.api == "esql.query" else json.dumps(recipe.body)
        found = _ESQL_AGO.findall(text) if recipe.api == "esql.query" else _DSL_AGO.findall(text)
        look_back = max(int(n) * _HOURS[unit] for n, unit in found)
        assert look_back <= 25, (recipe.label, look_back)
        assert ('mlmon.model.name ==' in text) if recipe.api == "esql.query" else (
            '{"term": {"mlmon.model.name":' in text), recipe.label
