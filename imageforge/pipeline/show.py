"""What the tasks print with rich: a progress bar per region while a version replicates, and
the versions table. (imageforge.azure prints nothing; rich loads only when a task prints.)
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from imageforge.azure.arm import one_line
from imageforge.azure.records import VersionInfo

if TYPE_CHECKING:  # rich loads only when a task prints
    from rich.console import Console


def stderr_console(*, plain: bool = False) -> Console:
    """A console on stderr for progress bars. ``plain``: one that does not redraw in place
    (several builds share the terminal, and two live displays would overwrite each other)."""
    from rich.console import Console  # lazy: rich is heavy

    return Console(stderr=True, force_terminal=False) if plain else Console(stderr=True)


class ReplicationProgress:
    """A rich progress bar per region (rendered once at the end when not on a terminal)."""

    def __init__(self, console: Console, label: str) -> None:
        from rich.progress import BarColumn, Progress, TextColumn  # lazy: rich is heavy

        self.progress = Progress(
            TextColumn("[bold]{task.fields[region]:<20}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[state]}"),
            console=console,
            transient=False,
        )
        self.label = label
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> ReplicationProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def show(self, info: VersionInfo) -> None:
        for status in info.region_status:
            state = status.state + (f": {one_line(status.details, 60)}" if status.details else "")
            done = 100 if status.state == "Completed" else status.progress
            if status.region not in self.tasks:
                self.tasks[status.region] = self.progress.add_task(
                    self.label, total=100, region=status.region, state=state
                )
            self.progress.update(self.tasks[status.region], completed=done, state=state)


def _fmt_date(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value else "-"


def render_versions(
    image_name: str, rows: list[VersionInfo], console: Console | None = None
) -> None:
    """Print the versions table (rich)."""
    from rich import box  # lazy: rich is heavy
    from rich.table import Table

    table = Table(
        title=f"{image_name}: gallery image versions",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("version", no_wrap=True)
    table.add_column("stage")
    table.add_column("tests")
    table.add_column("regions", min_width=12)
    table.add_column("latest")
    table.add_column("published")
    table.add_column("end of life")
    for row in rows:
        regions = "\n".join(f"{region} {state}" for region, state in row.regions.items())
        table.add_row(
            row.name,
            row.stage or "-",
            row.test_summary,
            regions or "-",
            "yes" if row.is_latest else ("excluded" if row.exclude_from_latest else "no"),
            _fmt_date(row.published_date),
            _fmt_date(row.end_of_life_date),
        )
    out = console if console is not None else _console_stdout()
    if not rows:
        out.print(f"{image_name}: no versions in the gallery")
        return
    out.print(table)


def _console_stdout() -> Console:
    """stdout; wide when it is not a terminal (a CI log should not wrap the table)."""
    from rich.console import Console  # lazy: rich is heavy

    console = Console()
    return console if console.is_terminal else Console(width=160)
