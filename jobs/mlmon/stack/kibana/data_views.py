"""Data views (saved-object type ``index-pattern``) over what mlmon stores.

Titles come from the contract's data stream names and the jobs' index names,
so a rename there cannot silently orphan a dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlmon.core.documents import ALERTS_INDEX, METRICS_INDEX
from mlmon.stack.kibana.saved_objects import SavedObject
from mlmon_logging.contract import DATA_STREAM_TYPE, DATASETS, DEAD_LETTER_DATASET


@dataclass(frozen=True)
class DataView:
    id: str
    name: str
    pattern: str
    time_field: str = "@timestamp"

    def saved_object(self) -> SavedObject:
        return SavedObject("index-pattern", self.id, {
            "title": self.pattern,
            "name": self.name,
            "timeFieldName": self.time_field,
            "allowHidden": False,
            "fieldAttrs": "{}",
            "fieldFormatMap": "{}",
            "runtimeFieldMap": "{}",
            "sourceFilters": "[]",
            # Kibana reads the field list from the mapping; an export carries none.
            "fields": "[]",
        })


def _events(dataset: str) -> str:
    return f"{DATA_STREAM_TYPE}-{dataset}-*"


PREDICTIONS = DataView("mlmon-predictions", "mlmon predictions", _events(DATASETS["prediction"]))
FEEDBACK = DataView("mlmon-feedback", "mlmon feedback", _events(DATASETS["feedback"]))
EXPLANATIONS = DataView("mlmon-explanations", "mlmon explanations", _events(DATASETS["explanation"]))
DEAD_LETTERS = DataView("mlmon-deadletters", "mlmon dead letters", _events(DEAD_LETTER_DATASET))
#: ``@timestamp`` of a metric document is the end of its window.
METRICS = DataView("mlmon-metrics", "mlmon metrics", f"{METRICS_INDEX}*")
ALERTS = DataView("mlmon-alerts", "mlmon alerts", f"{ALERTS_INDEX}*")

ALL: tuple[DataView, ...] = (PREDICTIONS, FEEDBACK, EXPLANATIONS, DEAD_LETTERS, METRICS, ALERTS)
