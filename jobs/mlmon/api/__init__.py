"""The Python API: everything the ``mlmon`` command does, from a notebook or a script.

>>> import mlmon.api as mm                                   # doctest: +SKIP
>>> mon = mm.connect("duckdb:///mlmon.duckdb", config="mlmon.yaml")   # doctest: +SKIP
>>> mon.metrics(model="churn", family="drift")              # a pandas DataFrame, one row per document  # doctest: +SKIP
>>> mon.report()                                             # displays inline in Jupyter; .save("r.html")  # doctest: +SKIP

See docs/api.md for a worked, tested example. Each call opens the store and closes it again, so
a notebook never holds the embedded store's file while ``mlmon ingest --follow`` needs it.
"""

from mlmon.api.frames import alerts_frame, metrics_frame
from mlmon.api.monitor import Monitor, connect
from mlmon.api.report import ReportView, build_report
from mlmon.api.views import FeatureView

__all__ = ["FeatureView", "Monitor", "ReportView", "alerts_frame", "build_report", "connect", "metrics_frame"]
