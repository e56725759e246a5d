"""Package discovery (all metadata is in pyproject.toml) and the emitter's optional C speedup.

``jobs/`` is the source root of the ``mlmon`` package (jobs/mlmon/...), so the folder
path is the import path; ``mlmon_logging`` sits at the repository root.

The Elasticsearch, Kibana and Logstash assets stay at the top of the repository, where
users read them, and ship in the wheel as data-only packages (no ``__init__.py``):
``mlmon.assets.elasticsearch`` is ``elasticsearch/``, and so on. ``mlmon.core.assets``
finds them with ``importlib.resources``; in an editable install (whose finder cannot
import a folder without ``__init__.py`` inside ``mlmon``) it falls back to the repository
folders themselves. ``logstash/tests/`` (golden files) does not ship.
"""

from setuptools import Extension, find_packages, setup

#: data-only package -> repository folder, and the files of it that ship.
ASSETS = {
    "mlmon.assets.elasticsearch": ("elasticsearch", ["*/*.json"]),
    "mlmon.assets.kibana": ("kibana", ["*.ndjson", "rules/*.json", "rules/connectors/*.json"]),
    "mlmon.assets.logstash": ("logstash", ["config/*.yml", "pipeline/*.conf", "ruby/*.rb", "ruby/*.json"]),
    # The rules' unit tests (rules/mlmon.rules.test.yml) are development files.
    "mlmon.assets.prometheus": ("prometheus", ["*.yml", "rules/mlmon.rules.yml"]),
}

setup(
    packages=(find_packages("jobs", include=["mlmon", "mlmon.*"])
              + find_packages(include=["mlmon_logging*"])
              + list(ASSETS)),
    package_dir={"mlmon": "jobs/mlmon", **{pkg: folder for pkg, (folder, _) in ASSETS.items()}},
    # Only what is listed here ships (not every file a MANIFEST.in puts in the sdist).
    include_package_data=False,
    package_data={"mlmon": ["py.typed"], "mlmon_logging": ["py.typed", "*.pyi"],
                  **{pkg: globs for pkg, (_, globs) in ASSETS.items()}},
    # optional: without a compiler the build goes on and mlmon_logging runs in pure Python.
    ext_modules=[Extension("mlmon_logging._speedups", ["mlmon_logging/_speedups.c"], optional=True)],
)
