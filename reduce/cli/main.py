"""The console-script entry: one-line errors with their exit codes, tracebacks only with --debug."""

from __future__ import annotations

import logging
import signal
import sys
import traceback

import typer

from ..errors import ReduceError, from_os_error
from .app import app


def _terminate(signum, frame):
    raise KeyboardInterrupt


def main() -> None:
    """Console-script entry: one-line errors with an exit code, tracebacks only with --debug."""
    from ..crds_setup import offline_environment

    offline_environment()  # before anything imports crds
    # pysiaf logs a warning at import when it cannot reach GitHub to compare SIAF versions.
    logging.getLogger("pysiaf").setLevel(logging.ERROR)
    # SIGTERM (docker stop, batch schedulers) stops like Ctrl-C: workers finish or are
    # cancelled, the lock is released, and the workspace stays resumable.
    signal.signal(signal.SIGTERM, _terminate)
    debug = "--debug" in sys.argv[1:]
    args = [a for a in sys.argv[1:] if a != "--debug"]
    try:
        rc = app(args=args, prog_name="mirim-reduce", standalone_mode=False)
        if rc == 130:  # typer turns KeyboardInterrupt (Ctrl-C, our SIGTERM handler) into 130
            raise KeyboardInterrupt
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except ReduceError as exc:
        _fail(exc, debug)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("interrupted: the workspace is resumable, run the same command again", err=True)
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: typer's own message and exit code
        exc.show()
        sys.exit(getattr(exc, "exit_code", 2))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        mapped = from_os_error(exc)  # disk full, read-only or forbidden files: documented codes
        if mapped is not None:
            _fail(mapped, debug)
        if debug:
            traceback.print_exc()
        typer.echo(f"error: unexpected {type(exc).__name__}: {exc}"
                   f"{'' if debug else ' (rerun with --debug for a traceback)'}", err=True)
        sys.exit(70)


def _fail(exc: ReduceError, debug: bool) -> None:
    """``error: <message>`` and the error's own exit code (with --debug, the traceback first)."""
    if debug:
        traceback.print_exc()
    typer.echo(f"error: {exc}", err=True)
    sys.exit(exc.exit_code)
