"""Package discovery for the jobs/ -> ``mlmon`` mapping (all metadata is in pyproject.toml),
and the emitter's optional C speedup."""

from setuptools import Extension, find_packages, setup

packages = ["mlmon"] + [f"mlmon.{p}" for p in find_packages("jobs")] + find_packages(include=["mlmon_logging*"])
setup(
    packages=packages,
    package_dir={"mlmon": "jobs"},
    # optional: without a compiler the build goes on and mlmon_logging runs in pure Python.
    ext_modules=[Extension("mlmon_logging._speedups", ["mlmon_logging/_speedups.c"], optional=True)],
)
