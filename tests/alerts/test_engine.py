"""The pure engine: status changes, N of M, re-notify interval, escalation, recovery, idempotence."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from mlmon.alerts.engine import evaluate
from mlmon.core.alerts import LastNotification
from mlmon.core.documents import SEVERITY
from mlmon.config.alerts import Rule
from tests.alerts.conftest import T0, make_metric, series

NOW = T0 + timedelta(days=30)
ONE_OF_ONE = Rule("drift", ("drift",), n=1, m=1, renotify_every=None)


def actions(alerts: list) -> list[tuple[int, str]]:
    return [((a.metric.window_start - T0).days, a.action) for a in alerts]


def test_fires_once_on_status_change_then_recovers_when_back_to_ok() -> None:
    history = series(["ok", "alert", "alert", "alert", "ok", "ok"])
    alerts = evaluate(history, [ONE_OF_ONE], {}, now=NOW)
    assert actions(alerts) == [(1, "fired"), (4, "recovered")]
    fired = alerts[0]
    assert (fired.previous_status, fired.metric.status) == ("ok", "alert")
    assert fired.metric.value == 0.3 and fired.metric.threshold is not None
    assert fired.fired_at == NOW


def test_n_of_m_ignores_a_single_bad_window() -> None:
    rule = Rule("drift", ("drift",), n=2, m=3, renotify_every=None)
    assert evaluate(series(["ok", "alert", "ok", "ok", "alert", "ok"]), [rule], {}, now=NOW) == []
    alerts = evaluate(series(["ok", "alert", "ok", "alert", "ok", "ok", "ok"]), [rule], {}, now=NOW)
    # fires when the 2nd bad window of 3 arrives; recovers after 3-2+1 = 2 ok windows in a row
    assert actions(alerts) == [(3, "fired"), (5, "recovered")]
    assert (alerts[0].bad_windows, alerts[0].considered_windows) == (2, 3)


def test_alternating_bad_and_ok_does_not_flap() -> None:
    rule = Rule("drift", ("drift",), n=2, m=3, renotify_every=None)
    alerts = evaluate(series(["alert", "ok"] * 5), [rule], {}, now=NOW)
    assert actions(alerts) == [(2, "fired")]


def test_renotifies_at_most_once_per_interval_while_still_bad() -> None:
    rule = Rule("drift", ("drift",), renotify_every=timedelta(days=3))
    alerts = evaluate(series(["alert"] * 8), [rule], {}, now=NOW)
    assert actions(alerts) == [(0, "fired"), (3, "renotified"), (6, "renotified")]


def test_missing_evidence_is_not_a_recovery() -> None:
    alerts = evaluate(series(["alert", "insufficient_data", "no_threshold", "alert", "ok"]), [ONE_OF_ONE], {},
                      now=NOW)
    assert actions(alerts) == [(0, "fired"), (4, "recovered")]


def test_warning_rule_escalates_when_status_gets_worse() -> None:
    rule = Rule("drift", ("drift",), min_status="warning", renotify_every=None)
    alerts = evaluate(series(["ok", "warning", "warning", "alert", "alert", "ok"]), [rule], {}, now=NOW)
    assert actions(alerts) == [(1, "fired"), (3, "escalated"), (5, "recovered")]


def test_default_min_status_ignores_warnings() -> None:
    assert evaluate(series(["warning"] * 5), [ONE_OF_ONE], {}, now=NOW) == []


def test_rerun_with_last_notification_raises_nothing_new() -> None:
    history = series(["ok", "alert", "alert"])
    first = evaluate(history, [ONE_OF_ONE], {}, now=NOW)
    assert actions(first) == [(1, "fired")]
    memory = {"drift": LastNotification("fired", first[-1].metric.window_end, "alert")}
    assert evaluate(history, [ONE_OF_ONE], memory, now=NOW + timedelta(hours=1)) == []
    # ...and a new bad window after it is not a status change either
    assert evaluate(history + [make_metric(3, "alert")], [ONE_OF_ONE], memory, now=NOW) == []


def test_alert_ids_are_deterministic_and_distinct_per_window_and_action() -> None:
    history = series(["alert", "ok", "alert"])
    a = evaluate(history, [ONE_OF_ONE], {}, now=NOW)
    b = evaluate(history, [ONE_OF_ONE], {}, now=NOW + timedelta(days=1))
    assert [x.id for x in a] == [x.id for x in b]
    assert len({x.id for x in a}) == 3
    assert len({x.series_id for x in a}) == 1


def test_latest_computation_of_a_window_wins() -> None:
    # labels arrived late: the window was recomputed and is no longer bad
    early = make_metric(0, "alert", computed_at=T0 + timedelta(days=1))
    late = make_metric(0, "ok", computed_at=T0 + timedelta(days=2))
    assert evaluate([late, early], [ONE_OF_ONE], {}, now=NOW) == []


def test_first_matching_rule_applies_and_unmatched_series_are_ignored() -> None:
    specific = Rule("age-drift", ("drift",), features=("age",), renotify_every=None)
    general = Rule("drift", ("drift",), renotify_every=None)
    alerts = evaluate(series(["alert"]), [specific, general], {}, now=NOW)
    assert [a.rule_id for a in alerts] == ["age-drift"]
    assert evaluate(series(["alert"], family="fairness"), [general], {}, now=NOW) == []


def test_history_of_two_series_is_rejected() -> None:
    with pytest.raises(ValueError, match="one series"):
        evaluate([make_metric(0, "ok"), make_metric(1, "ok", feature="income")], [ONE_OF_ONE], {}, now=NOW)


def test_alert_document_fields_are_all_in_the_mapping() -> None:
    from mlmon.core.alert_schema import ALERT_FIELDS
    from mlmon.core.queries import flatten_source

    alert = evaluate(series(["alert"]), [ONE_OF_ONE], {}, now=NOW)[0]
    flat = flatten_source(alert.to_source())
    assert set(flat) == set(ALERT_FIELDS)
    assert flat["alert.status.new"] == "alert" and flat["metric.threshold.alert"] == 0.25
    assert "churn v3 drift/psi feature=age is alert (above: warning 0.1, alert 0.25)" in flat["alert.reason"]


def _judge_by_definition(statuses: list[str], rule: Rule) -> list[tuple[int, str, int, int]]:
    """The rule read literally, window by window: count the bad ones among the last m, look back for calm."""
    out: list[tuple[int, str, int, int]] = []
    firing = False
    notified_status = ""
    notified_at: int | None = None
    calm = rule.m - rule.n + 1
    for i, status in enumerate(statuses):
        recent = statuses[max(0, i - rule.m + 1): i + 1]
        bad = sum(rule.is_bad(s) for s in recent)
        all_ok = i + 1 >= calm and all(s == "ok" for s in statuses[i + 1 - calm: i + 1])
        action = None
        if not firing and bad >= rule.n:
            action = "fired"
        elif firing and bad >= rule.n:
            if rule.is_bad(status) and SEVERITY[status] > SEVERITY.get(notified_status, 0):
                action = "escalated"
            elif rule.renotify_every is not None and notified_at is not None and rule.is_bad(status) \
                    and timedelta(days=i - notified_at) >= rule.renotify_every:
                action = "renotified"
        elif firing and all_ok:
            action = "recovered"
        if action is not None:
            out.append((i, action, bad, len(recent)))
            firing, notified_status, notified_at = action != "recovered", status, i
    return out


@pytest.mark.parametrize("seed", range(40))
def test_n_of_m_verdicts_match_the_rule_read_literally(seed: int) -> None:
    rng = random.Random(seed)
    m = rng.randint(1, 6)
    rule = Rule("drift", ("drift",), n=rng.randint(1, m), m=m, min_status=rng.choice(["warning", "alert"]),
                renotify_every=rng.choice([None, timedelta(days=rng.randint(1, 5))]))
    statuses = rng.choices(["ok", "warning", "alert", "insufficient_data"], weights=[5, 2, 3, 1], k=60)
    alerts = evaluate(series(statuses), [rule], {}, now=NOW)
    got = [((a.metric.window_start - T0).days, a.action, a.bad_windows, a.considered_windows) for a in alerts]
    assert got == _judge_by_definition(statuses, rule)
