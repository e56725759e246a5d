"""The index Logstash's elasticsearch output writes an event to, read from the pipeline config itself.

The output's ``index`` is a Logstash sprintf pattern such as
``%{[@metadata][mlmon][index]}-%{+yyyy.MM}.01``: field references are replaced
by the event's values, ``%{+FORMAT}`` by the event's ``@timestamp`` (UTC)
formatted with a Joda pattern. Tests use :func:`render_index` to send the
golden documents where Logstash would, so a change of the routing in the
config is what the tests see, not a copy of it.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlmon.core.assets import LOGSTASH

EVENTS_PIPELINE = LOGSTASH / "pipeline" / "mlmon-events.conf"
DLQ_PIPELINE = LOGSTASH / "pipeline" / "mlmon-dlq.conf"

_INDEX = re.compile(r'^\s*index\s*=>\s*"(?P<pattern>[^"]+)"', re.M)
_REFERENCE = re.compile(r"%\{(?P<ref>[^}]+)\}")
_ENV = re.compile(r"\$\{(?P<name>[A-Z_]+):(?P<default>[^}]*)\}")
#: The Joda letters the mlmon configs use, as strftime directives (year of era, month, day, hour).
_JODA = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H"}
_JODA_TOKEN = re.compile(r"yyyy|MM|dd|HH|[A-Za-z]+")


def output_index_pattern(conf: Path = EVENTS_PIPELINE) -> str:
    """The ``index`` setting of the config's elasticsearch output, ``${VAR:default}`` resolved to its default."""
    found = _INDEX.findall(conf.read_text(encoding="utf-8"))
    if len(found) != 1:
        raise ValueError(f"{conf}: expected one `index =>` setting, found {len(found)}")
    return _ENV.sub(lambda m: m["default"], found[0])


def joda_format(pattern: str, instant: datetime) -> str:
    def one(token: re.Match[str]) -> str:
        if token[0] not in _JODA:
            raise ValueError(f"Joda pattern {pattern!r}: {token[0]!r} is not one mlmon uses ({', '.join(_JODA)})")
        return instant.strftime(_JODA[token[0]])
    return _JODA_TOKEN.sub(one, pattern)


def render_index(pattern: str, metadata_index: str, timestamp: str) -> str:
    """``pattern`` for an event whose ``[@metadata][mlmon][index]`` and ``@timestamp`` are given."""
    instant = datetime.fromisoformat(timestamp.replace("Z", "+00:00")).astimezone(timezone.utc)

    def one(ref: re.Match[str]) -> str:
        name = ref["ref"]
        if name.startswith("+"):
            return joda_format(name[1:], instant)
        if name == "[@metadata][mlmon][index]":
            return metadata_index
        raise ValueError(f"index pattern {pattern!r}: field reference {name!r} is not routed by the tests")
    return _REFERENCE.sub(one, pattern)


def routed(doc: dict[str, Any], conf: Path = EVENTS_PIPELINE) -> str:
    """The index a golden document (``{"index", "id", "source"}``) is written to by ``conf``'s output."""
    return render_index(output_index_pattern(conf), doc["index"], str(doc["source"]["@timestamp"]))
