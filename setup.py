"""Package discovery (all metadata is in pyproject.toml) and the emitter's optional C speedup.

``jobs/`` is the source root of the ``mlmon`` package (jobs/mlmon/...), so the folder
path is the import path; ``mlmon_logging`` sits at the repository root.
"""

from setuptools import Extension, find_packages, setup

setup(
    packages=find_packages("jobs", include=["mlmon", "mlmon.*"]) + find_packages(include=["mlmon_logging*"]),
    package_dir={"mlmon": "jobs/mlmon"},
    # optional: without a compiler the build goes on and mlmon_logging runs in pure Python.
    ext_modules=[Extension("mlmon_logging._speedups", ["mlmon_logging/_speedups.c"], optional=True)],
)
