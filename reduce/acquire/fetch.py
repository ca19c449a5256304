"""``mirim-reduce fetch PROGRAM``: query MAST, then download the MIRI imaging uncal files."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..fsutil import write_json
from .download import Downloader, DownloadSettings, _human
from .errors import ProprietaryDataError
from .program import parse_program
from .query import ProgramPlan, connect, query_program
from .token import Token, load_token

log = logging.getLogger("mirim_reduce.acquire")


@dataclass
class FetchResult:
    program: str
    raw: Path
    plan: ProgramPlan
    outcomes: dict[str, str] = field(default_factory=dict)


def plan_program(program_text: str, token: Token | None):
    """(program id, logged-in astroquery client, plan): everything before the first byte is written."""
    program = parse_program(program_text)
    obs = connect(token)
    return program, obs, query_program(program, obs)


def fetch(program_text: str, workdir: Path, *, token_file: Path | None = None, dry_run: bool = False,
          settings: DownloadSettings | None = None, echo=print) -> FetchResult:
    """Fetch the program's MIRI imager uncal files into ``workdir/raw`` (nothing is written on a dry run
    or before the query succeeded)."""
    token = load_token(token_file)
    program, obs, plan = plan_program(program_text, token)
    raw = Path(workdir) / "raw"
    result = FetchResult(program=program, raw=raw, plan=plan)
    echo(format_plan(plan))
    if dry_run:
        return result
    exclusive = [f for f in plan.files if f.exclusive]
    if exclusive and token is None:
        raise ProprietaryDataError(
            f"program {program} has {len(exclusive)} exclusive-access file(s) (e.g. {exclusive[0].filename}): "
            f"set MAST_API_TOKEN or use --token-file with a token of an authorised MAST account")
    downloader = Downloader(obs, raw, settings, authenticated=token is not None)
    result.outcomes = downloader.run(plan.files)
    write_json(raw / "fetch.json", {
        "program": program, "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "files": [f.to_dict() for f in plan.files], "skipped": plan.skipped})
    counts = {}
    for how in result.outcomes.values():
        counts[how] = counts.get(how, 0) + 1
    echo(f"{len(plan.files)} files in {raw} ({', '.join(f'{n} {k}' for k, n in sorted(counts.items()))}); "
         f"{len(plan.skipped)} skipped")
    return result


def format_plan(plan: ProgramPlan) -> str:
    """The table of what is (or would be) fetched, the skips with their reason, and the totals."""
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"JWST program {plan.program}: MIRI imager uncal files")
    for col in ("file", "obs", "visit", "filter", "subarray", "readout", "groups", "duration s", "size"):
        table.add_column(col, justify="right" if col in ("groups", "duration s", "size") else "left")
    for f in plan.files:
        table.add_row(f.filename, f.observation, f.visit, f.filter, f.subarray, f.readpatt, str(f.ngroups),
                      f"{f.duration:.1f}", _human(f.size))
    buf = StringIO()
    console = Console(file=buf, width=160, force_terminal=False)
    console.print(table)
    for name, reason in plan.skipped:
        console.print(f"skipped {name}: {reason}")
    duration = sum(f.duration for f in plan.files)
    console.print(f"total: {len(plan.files)} files, {_human(plan.total_bytes)}, {duration:.0f} s of exposure; "
                  f"{len(plan.skipped)} skipped")
    return buf.getvalue().rstrip("\n")
