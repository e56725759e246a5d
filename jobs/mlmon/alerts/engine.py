"""The alert rule engine: pure, no I/O.

``evaluate`` walks a series' metric documents window by window, starting after
the last notification already made for it, and returns the alerts to write:

* ``fired``      - the rule's "N of the last M windows" condition became true;
* ``escalated``  - still firing, and the status got worse than when last notified
                   (a warning-level rule now sees ``alert``);
* ``renotified`` - still firing, this window is bad, and ``renotify_every`` has passed (in window time,
                   so a backfill re-notifies as a live run would) since the last notification;
* ``recovered``  - the last M-N+1 windows are all ``ok``: the fewest ok windows that
                   prove the condition false on their own, so a series alternating
                   bad/ok under a 2-of-3 rule does not flap fired/recovered/fired.
                   ``insufficient_data`` or ``no_threshold`` windows keep the state
                   as it is: missing evidence is not a recovery.

The engine's memory is the last notification per (rule, series), read back from
the stored alert documents; windows at or before it were evaluated already, so a
re-run of the same window raises nothing, and alert ids are deterministic anyway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from mlmon.core.alerts import Action, Alert, LastNotification, SeriesKey
from mlmon.config.alerts import Rule
from mlmon.core.documents import SEVERITY, MetricDocument


class Judged(Protocol):
    """What the engine reads of a window: a metric document, or a store's lighter SeriesWindow."""

    @property
    def window_start(self) -> datetime: ...
    @property
    def window_end(self) -> datetime: ...
    @property
    def status(self) -> str: ...
    @property
    def computed_at(self) -> datetime: ...


W = TypeVar("W", bound=Judged)


@dataclass(frozen=True)
class Decision:
    """An alert to raise at ``windows[index]`` of the judged windows (before a metric document is attached)."""

    index: int
    action: Action
    previous_status: str
    bad_windows: int
    considered_windows: int

    def alert(self, rule: Rule, series: SeriesKey, metric: MetricDocument, now: datetime) -> Alert:
        return Alert(rule_id=rule.id, rule_name=rule.display_name, action=self.action, series=series,
                     metric=metric, previous_status=self.previous_status, bad_windows=self.bad_windows,
                     considered_windows=self.considered_windows, fired_at=now)


def evaluate(history: Sequence[MetricDocument], rules: Sequence[Rule],
             last_notifications: Mapping[str, LastNotification], *, now: datetime) -> list[Alert]:
    """Alerts raised by the newest windows of one series.

    ``history`` holds the series' metric documents (any order; at least the last
    M-1 windows before the last notification should be included so "N of M"
    counts are right); ``rules`` are tried in order and the first match applies;
    ``last_notifications`` maps rule id to its last notification for this series;
    ``now`` is stamped as ``fired_at``.
    """
    if not history:
        return []
    keys = {SeriesKey.of(d) for d in history}
    if len(keys) > 1:
        a, b = sorted(keys)[:2]
        raise ValueError(f"evaluate() takes one series; got {a.describe()!r} and {b.describe()!r}")
    series = keys.pop()
    rule = next((r for r in rules if r.matches(series)), None)
    if rule is None:
        return []
    windows = latest_per_window(history)
    decisions = judge(windows, rule, last_notifications.get(rule.id))
    return [d.alert(rule, series, windows[d.index], now) for d in decisions]


def judge(windows: Sequence[Judged], rule: Rule, last: LastNotification | None) -> list[Decision]:
    """The rule's verdicts on one series' windows (oldest first, one per window; see
    :func:`latest_per_window`) after its last notification ``last``."""
    firing = last is not None and last.firing
    notified_end = last.window_end if last else None
    notified_status = last.status if last else ""

    # One pass over the statuses: bad windows so far (prefix sums) and the run of "ok" ending at each
    # window, so each window's "n of the last m" is two lookups (a backfill judges ~10^5 windows a round).
    bad_before = [0]
    ok_run: list[int] = []
    run = 0
    for w in windows:
        bad_before.append(bad_before[-1] + rule.is_bad(w.status))
        run = run + 1 if w.status == "ok" else 0
        ok_run.append(run)
    calm = rule.m - rule.n + 1
    decisions: list[Decision] = []
    for i, doc in enumerate(windows):
        if notified_end is not None and doc.window_end <= notified_end:
            continue  # evaluated in an earlier run
        first = max(0, i - rule.m + 1)
        bad = bad_before[i + 1] - bad_before[first]
        holds = bad >= rule.n
        all_ok = ok_run[i] >= calm  # the last `calm` windows (there are as many) all "ok"
        action = _action(rule, doc, firing, holds, all_ok, notified_end, notified_status)
        if action is None:
            continue
        decisions.append(Decision(i, action, windows[i - 1].status if i else "", bad, i + 1 - first))
        firing = action != "recovered"
        notified_end, notified_status = doc.window_end, doc.status
    return decisions


def _action(rule: Rule, doc: Judged, firing: bool, holds: bool, all_ok: bool,
            notified_end: datetime | None, notified_status: str) -> Action | None:
    if not firing:
        return "fired" if holds else None
    if holds:
        if rule.is_bad(doc.status) and SEVERITY.get(doc.status, 0) > SEVERITY.get(notified_status, 0):
            return "escalated"
        if (rule.renotify_every is not None and notified_end is not None and rule.is_bad(doc.status)
                and doc.window_end - notified_end >= rule.renotify_every):
            return "renotified"
        return None
    return "recovered" if all_ok else None


def latest_per_window(history: Sequence[W]) -> list[W]:
    """One entry per window (the latest computation wins; on a tie, the later in ``history``), oldest first."""
    by_window: dict[tuple[datetime, datetime], W] = {}
    for doc in history:
        slot = (doc.window_start, doc.window_end)
        seen = by_window.get(slot)
        if seen is None or doc.computed_at >= seen.computed_at:
            by_window[slot] = doc
    return [by_window[k] for k in sorted(by_window, key=lambda w: (w[1], w[0]))]
