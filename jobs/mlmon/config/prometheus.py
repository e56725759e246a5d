"""The exporter's settings: the ``prometheus:`` section of mlmon.yaml.

::

    prometheus:
      max_series: 10000          # metric series exported at most; the rest are counted as dropped
      segments: false            # true, or a list of segment fields (e.g. [region]) to export per value
      history: 7d                # documents of windows ending this long before a model's newest are read
      versions_seen_within: 1d   # versions whose newest window is older than this (vs. the model's newest) are left out
      refresh_every: 30s         # how often the store is read

Validated with the rest of mlmon.yaml (:class:`mlmon.config.model.MlmonYaml`), so ``mlmon run``
and ``mlmon config check`` accept the file ``mlmon serve-metrics`` reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from mlmon.config.values import Duration, Int1, Section, fail, is_name

@dataclass(frozen=True)
class ExporterSettings:
    """The ``prometheus:`` section resolved (its defaults are :class:`ExporterSpec`'s: :meth:`defaults`)."""

    max_series: int
    #: True: every segment field; a tuple: only these fields; empty: none (all-traffic series only).
    segments: bool | tuple[str, ...]
    history: timedelta
    versions_seen_within: timedelta
    refresh_every: timedelta

    @staticmethod
    def defaults() -> ExporterSettings:
        """The settings of a config without a ``prometheus:`` section."""
        return ExporterSpec().resolve()

    def exports_segment(self, segment_field: str) -> bool:
        return self.segments is True or (isinstance(self.segments, tuple) and segment_field in self.segments)


def _segments(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, list) and value and all(is_name(v) for v in value):
        return tuple(value)
    raise fail(f"expected true, false or a list of segment field names, got {value!r}")


class ExporterSpec(Section):
    """What ``mlmon serve-metrics`` exports, and how often it reads the store."""

    max_series: Int1 = Field(default=10_000, description="metric series exported at most (the rest are counted "
                                                         "in mlmon_exporter_series_dropped_total)")
    segments: Annotated[bool | tuple[str, ...], BeforeValidator(_segments)] = Field(
        default=False, description="export per-segment-value series: true, or a list of segment fields")
    history: Duration = Field(default="7d", validate_default=True,
                              description="read documents of windows ending this long before a model's newest")
    versions_seen_within: Duration = Field(default="1d", validate_default=True,
                                           description="leave out versions whose newest window is older than this, "
                                                       "counted from the model's newest window")
    refresh_every: Duration = Field(default="30s", validate_default=True, description="how often the store is read")

    def resolve(self) -> ExporterSettings:
        return ExporterSettings(max_series=self.max_series, segments=self.segments, history=self.history,
                                versions_seen_within=self.versions_seen_within, refresh_every=self.refresh_every)
