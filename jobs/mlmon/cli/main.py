"""The ``mlmon`` command line.

Exit codes (README, "Command line"): 0 done; 1 a failure the message names (store, file,
disk); 2 a usage error (bad option, bad config); 130 interrupted. A user error is one line
on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from mlmon.cli import commands
from mlmon.stores.protocols import StoreError
from mlmon_logging import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlmon", description="Monitor ML models in production on the Elastic stack.")
    parser.add_argument("--version", action="version", version=f"mlmon {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def one_line(message: object) -> str:
    """A message on one line: some library errors (DuckDB's, YAML's) span several."""
    return "; ".join(part.strip() for part in str(message).splitlines() if part.strip())


def _os_error(err: OSError) -> str:
    """``cannot write report.html: No space left on device`` rather than ``[Errno 28] ...``."""
    reason = err.strerror or str(err)
    return f"{err.filename}: {reason}" if err.filename else reason


def _quiet_closed_pipe() -> None:
    """The reader of stdout went away (``mlmon metrics | head``): stop quietly. Point stdout at
    /dev/null so the interpreter's final flush does not raise a second BrokenPipeError."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout without a file descriptor (captured in tests): nothing to flush
        pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # here, not at exit, so a closed pipe is caught below
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _quiet_closed_pipe()
        return 141  # as a shell reports a process ended by SIGPIPE (128 + 13)
    except StoreError as err:  # a bad store URL, a missing file, a store held past the wait: say so, no traceback
        print(f"mlmon {args.command}: {one_line(err)}", file=sys.stderr)
        return 1
    except UnicodeDecodeError as err:  # an input file that is not UTF-8 (the commands naming the file say so first)
        from mlmon.config.model import not_utf8

        print(f"mlmon {args.command}: an input is {not_utf8(err)}", file=sys.stderr)
        return 1
    except OSError as err:  # the environment refused: a full disk, a read-only folder, a file that vanished
        print(f"mlmon {args.command}: {_os_error(err)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
