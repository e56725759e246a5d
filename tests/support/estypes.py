"""Type-check Elasticsearch request bodies against Elastic's own API types.

Elasticsearch cannot run on the development and CI machines, so every body mlmon
ships (``elasticsearch/**/*.json``) or sends (``mlmon setup``, the jobs' searches,
watches, ...) is checked against the TypeScript types that the npm package
``@elastic/elasticsearch`` (pinned in ``typecheck/package.json``) generates from
Elastic's API specification. A misspelled key, a key in the wrong place (a query
parameter such as ``master_timeout`` put in the body) or a value of the wrong
type fails the check.

Usage (batch all bodies of a test module into ONE call: each call is one
``tsc`` run of about 3 s)::

    from tests.support.estypes import assert_bodies_typecheck

    def test_drift_searches_typecheck():
        assert_bodies_typecheck([
            ("search", build_histogram_search(...), "drift histogram search"),
            ("watcher.put_watch", json.loads(path.read_text()), path.name),
        ])

Each item is ``(api, body, label)``:

- ``api``: the API name as the Python/JS clients spell it, e.g. ``"search"``,
  ``"count"``, ``"esql.query"``, ``"indices.create"``, ``"indices.put_mapping"``,
  ``"indices.put_index_template"``, ``"cluster.put_component_template"``,
  ``"ilm.put_lifecycle"``, ``"security.put_role"``, ``"watcher.put_watch"``;
  any API of the client works.
- ``body``: the JSON request body exactly as sent (a dict; a list only for
  APIs whose whole body is one value).
- ``label``: names the body in failure messages (a file name, a test case).

In 9.x a request type (``estypes.SearchRequest``) mixes path, query-string and
body keys, so each body is checked against ``Pick<Request, BodyKeys>``, where
``BodyKeys`` is the API's body key list from the client's own request encoder
(``acceptedParams`` in ``lib/api/api/*.js``, generated from the same spec).
APIs whose whole body is one value (e.g. ``indices.put_settings``) are checked
against that value's type.

Spec corrections. The spec types the search request of a watch's ``search``
input and ``search`` transform as ``{query}`` only, while Elasticsearch accepts
a full search body there (``size``, ``aggs``, ...). ``watcher.put_watch`` bodies
are therefore checked with those request bodies typed as ``search`` bodies
(see ``_PRELUDE``); everything else in the watch keeps the spec's types.

On failure an ``AssertionError`` lists tsc's messages per label, with the
offending line of the body. tsc reports the first excess key per object
literal, so fix and re-run to see the next. ``node_modules`` is installed by
``make test`` (``npm ci --prefix typecheck``); without it the check fails with
the command to run, it never silently passes.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

TYPECHECK_DIR = Path(__file__).resolve().parents[2] / "typecheck"
_CLIENT_DIR = TYPECHECK_DIR / "node_modules" / "@elastic" / "elasticsearch"
_API_DIR = _CLIENT_DIR / "lib" / "api" / "api"
_TYPES_FILE = _CLIENT_DIR / "lib" / "api" / "types.d.ts"
_TSC = TYPECHECK_DIR / "node_modules" / "typescript" / "bin" / "tsc"

BodyItem = tuple[str, "dict | list", str]


@dataclass(frozen=True)
class ApiBody:
    """Where an API's request body lives in its request type."""

    request_type: str          # e.g. "IndicesPutIndexTemplateRequest"
    body_keys: tuple[str, ...]  # keys of the request type that go in the body
    whole_body: bool            # True: the body IS the value of body_keys[0]

    def ts_type(self) -> str:
        req = f"estypes.{self.request_type}"
        if self.whole_body:
            return f"{req}[{json.dumps(self.body_keys[0])}]"
        if not self.body_keys:
            return "Record<string, never>"
        return f"Pick<{req}, {' | '.join(json.dumps(k) for k in self.body_keys)}>"


# acceptedParams entries in the client's generated request encoders, e.g.
#   'indices.put_index_template': { path: [...], body: [...], query: [...] }
#   search: { path: [...], body: [...], query: [...] }
_ENTRY = re.compile(
    r"(?:'(?P<quoted>[\w.]+)'|(?P<bare>\w+)): \{\s*path: \[(?P<path>[^\]]*)\],"
    r"\s*(?:body: \[(?P<body>[^\]]*)\],\s*)?query: \[")
_STRING = re.compile(r"'([^']*)'")
# The encoder of a whole-body API assigns the parameter itself as the body.
_WHOLE_BODY = "body = params[key];"


def _require_node_modules() -> None:
    if not (_TSC.is_file() and _TYPES_FILE.is_file()):
        raise AssertionError(
            f"the Elasticsearch API types are not installed in {TYPECHECK_DIR}/node_modules: "
            "run `npm ci --prefix typecheck` (make test does it)")


@functools.cache
def api_bodies() -> dict[str, ApiBody]:
    """Every API of the pinned client -> where its body lives (parsed once per process)."""
    _require_node_modules()
    exported = set(re.findall(r"^export (?:interface|type) (\w+Request)\b", _TYPES_FILE.read_text(), re.M))
    apis: dict[str, ApiBody] = {}
    for js in sorted(_API_DIR.glob("*.js")):
        source = js.read_text()
        for m in _ENTRY.finditer(source):
            name = m["quoted"] or m["bare"]
            body_keys = tuple(_STRING.findall(m["body"] or ""))
            apis[name] = ApiBody(_request_type(name), body_keys, _is_whole_body(source, name))
    if "search" not in apis or "indices.put_index_template" not in apis:
        raise AssertionError(f"could not read the API body keys from {_API_DIR}: has the client's layout changed?")
    missing = sorted(a.request_type for a in apis.values() if a.request_type not in exported)
    if missing:
        # Only reported when used (see _resolve); a handful of APIs have no request type.
        for name in [n for n, a in apis.items() if a.request_type in missing]:
            apis.pop(name)
    return apis


def _request_type(api: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[._]", api)) + "Request"


def _is_whole_body(source: str, api: str) -> bool:
    ref = source.find(f"kAcceptedParams]['{api}']")
    if ref < 0:
        ref = source.find(f"acceptedParams.{api};")
    if ref < 0:
        return False
    end = source.find("\n    async ", ref)
    return _WHOLE_BODY in source[ref: end if end > 0 else len(source)]


def _resolve(api: str) -> ApiBody:
    try:
        return api_bodies()[api]
    except KeyError:
        close = [n for n in api_bodies() if n.split(".")[-1] == api.split(".")[-1]]
        raise AssertionError(f"unknown Elasticsearch API {api!r}" + (f"; did you mean {close}?" if close else "")) from None


@dataclass(frozen=True)
class _Span:
    label: str
    api: str
    first_line: int  # 1-based line of the `const` in the generated file
    last_line: int


def _keys(api: str) -> str:
    return " | ".join(json.dumps(k) for k in _resolve(api).body_keys)


def _prelude() -> list[str]:
    """Types correcting known gaps of the spec (see the module docstring)."""
    never = lambda *keys: " ".join(f"{k}?: never;" for k in keys)  # noqa: E731 - ExactlyOne by hand
    return [
        f"type SearchBody = Pick<estypes.SearchRequest, {_keys('search')}>",
        "type WatchSearchRequest = Omit<estypes.WatcherSearchInputRequestDefinition, 'body'> & { body?: SearchBody }",
        "type WatchInput =",
        "  | { search: Omit<estypes.WatcherSearchInput, 'request'> & { request: WatchSearchRequest }; "
        + never("chain", "http", "simple") + " }",
        "  | { chain: { inputs: Partial<Record<string, WatchInput>>[] }; " + never("search", "http", "simple") + " }",
        "  | { http: estypes.WatcherHttpInput; " + never("search", "chain", "simple") + " }",
        "  | { simple: Record<string, any>; " + never("search", "chain", "http") + " }",
        "type WatchTransform =",
        "  | { search: Omit<estypes.SearchTransform, 'request'> & { request: WatchSearchRequest }; "
        + never("chain", "script") + " }",
        "  | { chain: WatchTransform[]; " + never("search", "script") + " }",
        "  | { script: estypes.ScriptTransform; " + never("search", "chain") + " }",
        f"type WatchBody = Omit<Pick<estypes.WatcherPutWatchRequest, {_keys('watcher.put_watch')}>, 'input' | 'transform'>"
        " & { input?: WatchInput; transform?: WatchTransform }",
        "",
    ]


#: APIs whose body type is corrected by _prelude().
_CORRECTED: dict[str, str] = {"watcher.put_watch": "WatchBody"}


def render_typescript(items: list[BodyItem]) -> tuple[str, list[_Span]]:
    """The .ts source typing each body as an object literal, and where each one sits."""
    lines = ["import type { estypes } from '@elastic/elasticsearch'", ""]
    if any(api in _CORRECTED for api, _, _ in items):
        lines += _prelude()
    spans: list[_Span] = []
    for i, (api, body, label) in enumerate(items):
        target = _resolve(api)
        if not target.whole_body and not isinstance(body, dict):
            raise AssertionError(f"{label}: the body of {api} is a JSON object, got {type(body).__name__}")
        # JSON is a valid TypeScript literal; allow_nan=False because NaN is not JSON.
        literal = json.dumps(body, indent=2, ensure_ascii=False, allow_nan=False)
        block = f"// {json.dumps(label)[1:-1]} ({api})\nexport const b{i}: {_CORRECTED.get(api) or target.ts_type()} = {literal}\n"
        first = len(lines) + 1
        lines.extend(block.splitlines())
        spans.append(_Span(label, api, first, len(lines)))
    return "\n".join(lines) + "\n", spans


def typecheck_bodies(items: list[BodyItem]) -> list[str]:
    """Run tsc once over all bodies; return one message per error (empty: all bodies typecheck)."""
    if not items:
        return []
    labels = [label for _, _, label in items]
    dupes = sorted({lb for lb in labels if labels.count(lb) > 1})
    if dupes:
        raise AssertionError(f"labels must be unique to map errors back: {dupes}")
    source, spans = render_typescript(items)
    return compile_typescript(source, [(f"{s.label} ({s.api}), body", s.first_line, s.last_line) for s in spans],
                              file_name="bodies.ts", extends="../tsconfig.json")


def compile_typescript(source: str, spans: Sequence[tuple[str, int, int]], *, file_name: str,
                       extends: str) -> list[str]:
    """Compile ``source`` with tsc (strict, per ``extends``); one message per error, named by the span
    ``(label, first line, last line)`` it falls in (empty: it compiles). Shared by the Elasticsearch
    body and the Grafana dashboard checks."""
    src_lines = source.splitlines()
    pattern = re.compile(rf"^{re.escape(file_name)}\((?P<line>\d+),(?P<col>\d+)\): (?P<msg>.*)$")
    # A private directory inside typecheck/ so module resolution finds its node_modules,
    # and parallel test runs (several helpers, pytest-xdist) never share files.
    work = Path(tempfile.mkdtemp(prefix=".run-", dir=TYPECHECK_DIR))
    try:
        (work / file_name).write_text(source, encoding="utf-8")
        (work / "tsconfig.json").write_text(json.dumps({"extends": extends, "files": [file_name]}))
        proc = subprocess.run(["node", str(_TSC), "-p", str(work / "tsconfig.json"), "--pretty", "false"],
                              cwd=work, capture_output=True, text=True, timeout=300)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if proc.returncode == 0:
        return []
    errors: list[str] = []
    for raw in (proc.stdout + proc.stderr).splitlines():
        m = pattern.match(raw)
        if not m:
            if raw.strip() and not raw.startswith(" "):
                errors.append(f"tsc: {raw}")
            elif errors:
                errors[-1] += "\n" + raw  # continuation of the previous message
            continue
        line = int(m["line"])
        span = next((sp for sp in spans if sp[1] <= line <= sp[2]), None)
        where = "generated header" if span is None else f"{span[0]} line {line - span[1]}"
        errors.append(f"{where}: {m['msg']}\n    > {src_lines[line - 1].strip()}")
    return errors or [f"tsc failed with exit code {proc.returncode}: {proc.stdout}{proc.stderr}"]


def assert_bodies_typecheck(items: list[BodyItem]) -> None:
    """Fail (AssertionError) unless every body typechecks against its API's request body type."""
    errors = typecheck_bodies(items)
    if errors:
        raise AssertionError(f"{len(errors)} Elasticsearch body type error(s):\n" + "\n".join(errors))
