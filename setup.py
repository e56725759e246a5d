"""Package discovery for the jobs/ -> ``mlmon`` mapping (all metadata is in pyproject.toml)."""

from setuptools import find_packages, setup

packages = ["mlmon"] + [f"mlmon.{p}" for p in find_packages("jobs")] + find_packages(include=["mlmon_logging*"])
setup(packages=packages, package_dir={"mlmon": "jobs"})
