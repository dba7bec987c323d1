"""Reports and lists for people and programs: ``--format table|csv|json``.

``json`` is one JSON document on stdout (the default for programs, and the stable form);
``table`` is a rich table for a terminal; ``csv`` is RFC 4180 with a header row, for a
spreadsheet. Every report builds a ``Report`` (title, columns, rows, and the JSON document) once,
and ``render`` prints it in the chosen format, so the three never disagree.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import click

FORMATS = ("table", "csv", "json")
TABLE_WIDTH_MIN = 100


@dataclass
class Report:
    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]] = field(default_factory=list)
    document: Any = None                       # the JSON form; the rows as objects when None
    right: frozenset[str] = frozenset()        # columns to right-align in a table (amounts)
    footer: list[str] = field(default_factory=list)   # lines printed under a table (totals, checks)

    def as_json(self) -> Any:
        if self.document is not None:
            return self.document
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def format_option(default: str = "json") -> Any:
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default=default, show_default=True,
                        help="table for people, csv for spreadsheets, json for programs")


def render(report: Report, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(report.as_json(), default=str))
    elif fmt == "csv":
        click.echo(to_csv(report), nl=False)
    else:
        print_table(report)


def to_csv(report: Report) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(report.columns)
    for row in report.rows:
        writer.writerow(["" if v is None else v for v in row])
    return buf.getvalue()


def print_table(report: Report) -> None:
    import shutil

    from rich.console import Console
    from rich.table import Table

    table = Table(title=report.title, title_justify="left", show_lines=False)
    for col in report.columns:
        table.add_column(col, justify="right" if col in report.right else "left", overflow="fold")
    for row in report.rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    width = max(shutil.get_terminal_size((TABLE_WIDTH_MIN, 24)).columns, TABLE_WIDTH_MIN)
    console = Console(file=click.get_text_stream("stdout"), width=width, highlight=False,
                      force_terminal=False, color_system=None)
    console.print(table)
    for line in report.footer:
        console.print(line, markup=False)
