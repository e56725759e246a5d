"""Subcommands of ``mlmon``: one module each, discovered by :mod:`mlmon.cli.main`.

A module here defines ``register(subparsers) -> None`` that adds its parser and
sets ``func`` (a callable taking the parsed args and returning an exit code).
Modules import heavy dependencies inside ``func`` so ``mlmon --version`` and
``mlmon emit-sample`` work with the emitter's light dependencies only.
"""
