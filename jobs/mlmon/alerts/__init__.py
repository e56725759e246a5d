"""Alerting: alert documents, the local rule engine, the outbox, and the Kibana rules / Watcher watches shipped as files.

* :mod:`mlmon.alerts.engine` - ``evaluate(history, rules, last_notifications, now=...)``, pure.
* :mod:`mlmon.config.alerts` - rules and the ``alerts:`` section of mlmon.yaml (``parse_alerts_config``).
* :mod:`mlmon.alerts.local` - ``alert_round``: evaluate after a job round, store alerts and queue their deliveries.
* :mod:`mlmon.alerts.outbox` - ``deliver_outbox``: send queued deliveries with the store closed, retry, expire.
* :mod:`mlmon.core.alert_schema` - ``ALERT_FIELDS`` and ``OUTBOX_FIELDS``, the stored shapes.
* :mod:`mlmon.stack.alert_assets` - generates ``kibana/rules/*.json`` and ``elasticsearch/watcher/*.json``.
"""

from mlmon.alerts.engine import evaluate
from mlmon.alerts.local import AlertRoundReport, alert_round
from mlmon.alerts.outbox import DeliveryReport, alert_store_of, deliver_outbox
from mlmon.core.alerts import Alert, Delivery, LastNotification, SeriesKey
from mlmon.config.alerts import DEFAULT_RULES, AlertsConfig, AlertsConfigError, Rule, parse_alerts_config

__all__ = ["DEFAULT_RULES", "Alert", "AlertRoundReport", "AlertsConfig", "AlertsConfigError", "Delivery",
           "DeliveryReport", "LastNotification", "Rule", "SeriesKey", "alert_round", "alert_store_of",
           "deliver_outbox", "evaluate", "parse_alerts_config"]
