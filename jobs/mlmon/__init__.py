"""mlmon jobs: stores, metric math, periodic jobs and the ``mlmon`` command line."""

from mlmon_logging import __version__

__all__ = ["__version__"]
