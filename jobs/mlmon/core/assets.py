"""Where the readable assets (templates, pipelines, saved objects) live.

They sit at the top of the repository (``elasticsearch/``, ``kibana/``, ``logstash/``)
and ship in the wheel as the data-only packages ``mlmon.assets.elasticsearch``,
``mlmon.assets.kibana`` and ``mlmon.assets.logstash`` (setup.py maps them), found here
with :mod:`importlib.resources`:

* installed from a wheel: the folders under ``site-packages/mlmon/assets/``;
* a checkout (``pip install -e .``, or ``PYTHONPATH=jobs``): the repository folders
  themselves (setuptools' editable finder cannot import a folder without
  ``__init__.py`` inside a regular package, so the lookup falls back to them);
* ``MLMON_ASSETS=DIR`` overrides both: ``DIR/elasticsearch``, ``DIR/kibana``, ``DIR/logstash``.

All three are real :class:`~pathlib.Path` objects (``/``, ``glob``, ``read_text``,
``relative_to`` work). The generators (``python -m mlmon.stack.elasticsearch_assets``
and co.) write into them: :func:`refuse_write` stops them from writing into an
installed copy.
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

#: The repository checkout this module would sit in (jobs/mlmon/core/assets.py).
_CHECKOUT = Path(__file__).resolve().parents[3]
_OVERRIDE = os.environ.get("MLMON_ASSETS")


def _folder(name: str) -> tuple[Path, bool]:
    """The folder of asset package ``name`` and whether it is the repository's own."""
    if _OVERRIDE:
        return Path(_OVERRIDE) / name, False
    try:
        resources = importlib.resources.files(f"mlmon.assets.{name}")
    except ModuleNotFoundError:  # not installed as package data: a checkout
        return _CHECKOUT / name, True
    if isinstance(resources, Path):
        return resources, False
    # A data-only package has no __init__.py, so it is a namespace package and
    # importlib.resources answers a MultiplexedPath over its folder: any child's parent is it.
    child = next(iter(resources.iterdir()), None)
    if isinstance(child, Path):
        return child.parent, False
    # Only a zip import gives no file-system paths; pip never installs mlmon that way.
    raise RuntimeError(f"mlmon's {name} assets are not files on disk ({resources!r}): install mlmon with pip, "
                       "or set MLMON_ASSETS to a folder holding elasticsearch/, kibana/ and logstash/")


ELASTICSEARCH, _ES_IN_CHECKOUT = _folder("elasticsearch")
KIBANA, _ = _folder("kibana")
LOGSTASH, _ = _folder("logstash")

#: The folder holding elasticsearch/, kibana/ and logstash/: the repository root in a
#: checkout, ``site-packages/mlmon/assets`` when installed, or MLMON_ASSETS.
ROOT = ELASTICSEARCH.parent

#: True when the assets are the repository's folders (a checkout, e.g. ``pip install -e .``).
IN_CHECKOUT = _ES_IN_CHECKOUT


def refuse_write(target: Path) -> str | None:
    """Why a generator must not write ``target``; None when it may.

    It may write in a checkout (or under MLMON_ASSETS, or anywhere outside the
    installed assets, e.g. a test's tmp dir) when the folder is writable; never
    into the copy installed with the wheel.
    """
    target = Path(target).resolve()
    installed = not IN_CHECKOUT and not _OVERRIDE
    if installed and target.is_relative_to(ROOT.resolve()):
        return (f"{target} is the installed copy of the assets: regenerate them in a repository "
                f"checkout (pip install -e .), or set MLMON_ASSETS to a writable folder")
    folder = target if target.is_dir() else target.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not os.access(folder, os.W_OK) or (target.is_file() and not os.access(target, os.W_OK)):
        return f"{target} is not writable"
    return None
