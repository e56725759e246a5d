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
from datetime import datetime

from mlmon.core.alerts import Action, Alert, LastNotification, SeriesKey
from mlmon.config.alerts import Rule
from mlmon.core.documents import SEVERITY, MetricDocument


def evaluate(history: Sequence[MetricDocument], rules: Sequence[Rule],
             last_notifications: Mapping[str, LastNotification], *, now: datetime) -> list[Alert]:
    """Alerts raised by the newest windows of one series.

    ``history`` holds the series' metric documents (any order; at least the last
    M-1 windows before the last notification should be included so "N of M"
    counts are right); ``rules`` are tried in order and the first match applies;
    ``last_notifications`` maps rule id to its last notification for this series;
    ``now`` is stamped as ``fired_at``.
    """
    windows = _windows(history)
    if not windows:
        return []
    series = SeriesKey.of(windows[0])
    rule = next((r for r in rules if r.matches(series)), None)
    if rule is None:
        return []
    last = last_notifications.get(rule.id)
    firing = last is not None and last.firing
    notified_end = last.window_end if last else None
    notified_status = last.status if last else ""

    alerts: list[Alert] = []
    for i, doc in enumerate(windows):
        if notified_end is not None and doc.window_end <= notified_end:
            continue  # evaluated in an earlier run
        recent = windows[max(0, i - rule.m + 1): i + 1]
        bad = sum(rule.is_bad(w.status) for w in recent)
        holds = bad >= rule.n
        calm = rule.m - rule.n + 1
        all_ok = i + 1 >= calm and all(w.status == "ok" for w in windows[i + 1 - calm: i + 1])
        action = _action(rule, doc, firing, holds, all_ok, notified_end, notified_status)
        if action is None:
            continue
        alerts.append(Alert(rule_id=rule.id, rule_name=rule.display_name, action=action, series=series,
                            metric=doc, previous_status=windows[i - 1].status if i else "",
                            bad_windows=bad, considered_windows=len(recent), fired_at=now))
        firing = action != "recovered"
        notified_end, notified_status = doc.window_end, doc.status
    return alerts


def _action(rule: Rule, doc: MetricDocument, firing: bool, holds: bool, all_ok: bool,
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


def _windows(history: Sequence[MetricDocument]) -> list[MetricDocument]:
    """One document per window (the latest computation wins), oldest first; one series only."""
    by_window: dict[tuple[datetime, datetime], MetricDocument] = {}
    key: SeriesKey | None = None
    for doc in history:
        doc_key = SeriesKey.of(doc)
        if key is None:
            key = doc_key
        elif doc_key != key:
            raise ValueError(f"evaluate() takes one series; got {key.describe()!r} and {doc_key.describe()!r}")
        slot = (doc.window_start, doc.window_end)
        seen = by_window.get(slot)
        if seen is None or doc.computed_at >= seen.computed_at:
            by_window[slot] = doc
    return [by_window[k] for k in sorted(by_window, key=lambda w: (w[1], w[0]))]
