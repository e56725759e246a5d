"""What ``ModelLogger`` puts on the emitter's queue: one tuple per log call, its kind first.

The caller thread builds these (cheap: no copies beyond the user's dicts); the writer
thread turns them into events (:mod:`mlmon_logging.logger`) and, when metrics are on,
into Prometheus samples (:mod:`mlmon_logging.prometheus`). The layouts:

* ``(PREDICTION, ts_ns, prediction_id, features, prediction, score, latency_ms, segment, scores)``;
  a row of ``log_predictions`` has its slice's :class:`~mlmon_logging.blocks.RowBlock` as
  ``features`` and its row number in it as ``segment``
* ``(FEEDBACK, ts_ns, prediction_id, actual)``
* ``(EXPLANATION, ts_ns, prediction_id, attributions, method, base_value)``
* ``(PREDICTION_ERROR, ts_ns, prediction_id, error, message, latency_ms)``
"""

from __future__ import annotations

from typing import Final

from mlmon_logging.lines import PREDICTION

FEEDBACK: Final = 1
EXPLANATION: Final = 2
PREDICTION_ERROR: Final = 3
#: Index of ``prediction``, ``score`` and ``latency_ms`` in a prediction tuple.
PREDICTION_OUTPUT: Final = 4
PREDICTION_SCORE: Final = 5
PREDICTION_LATENCY: Final = 6

__all__ = ["EXPLANATION", "FEEDBACK", "PREDICTION", "PREDICTION_ERROR", "PREDICTION_LATENCY", "PREDICTION_OUTPUT",
           "PREDICTION_SCORE"]
