"""The examples of docs/api.md run, and print what the page says they print."""

from __future__ import annotations

import doctest
import shutil
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_api_doc_examples() -> None:
    globs: dict[str, object] = {}
    result = doctest.testfile(str(DOC), module_relative=False, globs=globs, optionflags=doctest.ELLIPSIS,
                              raise_on_error=False, verbose=False)
    workdir = globs.get("workdir")
    if isinstance(workdir, Path):
        shutil.rmtree(workdir, ignore_errors=True)
    assert result.attempted > 20
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {DOC.name} failed (see above)"
