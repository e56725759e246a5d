"""mlmon_logging: log model predictions, ground truth and explanations as ECS JSON events.

Three ways in, one event contract (:mod:`mlmon_logging.contract`):

* :class:`ModelLogger` - non-blocking, for the request path;
* :func:`mlmon_logging.processors.model_event_processors` - in an app's own structlog setup;
* :class:`mlmon_logging.stdlib.ModelEventHandler` / ``ModelEventFormatter`` - stdlib
  ``logging``, configurable with ``logging.config.dictConfig``.
"""

__version__ = "0.1.0"

from mlmon_logging.emitter import EmitterStats  # noqa: E402
from mlmon_logging.ids import new_id  # noqa: E402
from mlmon_logging.logger import ModelLogger  # noqa: E402

__all__ = ["EmitterStats", "ModelLogger", "__version__", "new_id"]
