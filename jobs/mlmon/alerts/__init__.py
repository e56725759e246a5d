"""Alerting: alert documents, the local rule engine, and the Kibana rules / Watcher watches shipped as files.

* :mod:`mlmon.alerts.engine` - ``evaluate(history, rules, last_notifications, now=...)``, pure.
* :mod:`mlmon.config.alerts` - rules and the ``alerts:`` section of mlmon.yaml (``parse_alerts_config``).
* :mod:`mlmon.alerts.local` - ``alert_round``: evaluate after a job round, store, notify a webhook.
* :mod:`mlmon.core.alert_schema` - ``ALERT_FIELDS``, the alert document mapping.
* :mod:`mlmon.stack.alert_assets` - generates ``kibana/rules/*.json`` and ``elasticsearch/watcher/*.json``.
"""

from mlmon.alerts.engine import evaluate
from mlmon.alerts.local import AlertRoundReport, alert_round
from mlmon.core.alerts import Alert, LastNotification, SeriesKey
from mlmon.config.alerts import DEFAULT_RULES, AlertsConfig, AlertsConfigError, Rule, parse_alerts_config

__all__ = ["DEFAULT_RULES", "Alert", "AlertRoundReport", "AlertsConfig", "AlertsConfigError", "LastNotification",
           "Rule", "SeriesKey", "alert_round", "evaluate", "parse_alerts_config"]
