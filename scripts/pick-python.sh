#!/usr/bin/env sh
# Prints the interpreter `make` builds .venv from: the first candidate that is
# CPython >= 3.11 and can make a venv with pip (ensurepip present).
#
# The distribution's /usr/bin/python3 comes first on purpose: distributions
# build it optimised and link it statically (Debian's here has no libpython),
# while pyenv's builds (first on PATH on many developer machines, this one
# included) are shared and get --enable-optimizations only when
# PYTHON_CONFIGURE_OPTS asks for it (this one's configure line has none).
# Measured here with benchmarks/emitter.py: the same code drains about 1.3x
# faster under Debian's 3.11 than under pyenv's, and structlog's recipe took
# 8-18 us a call on the caller instead of 21-22 us.
# `make PYTHON=...` overrides the choice.
for candidate in /usr/bin/python3 "$(command -v python3.11)" "$(command -v python3)"; do
    [ -n "$candidate" ] && [ -x "$candidate" ] || continue
    if "$candidate" -c 'import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "$candidate"
        exit 0
    fi
done
# None qualifies: hand back the first one found, so the Makefile's version check names it.
command -v python3.11 || command -v python3
