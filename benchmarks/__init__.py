"""Benchmarks: wall time and peak memory of the reduction (``make bench``)."""


def markdown_table(header: list, rows: list[list]) -> str:
    """A Markdown table (every cell through ``str``), as the benchmarks print and README shows them."""
    out = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    return "\n".join(out + ["| " + " | ".join(map(str, row)) + " |" for row in rows])
