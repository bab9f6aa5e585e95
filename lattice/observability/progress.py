"""Progress of long operations (converting a model, loading it): a `rich` progress bar when stderr is
a terminal, plain log lines otherwise (JSON ones, off a terminal, like every other line)."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

log = logging.getLogger("lattice.progress")

Step = Callable[[str], None]
"""Called as each step begins, with what it does."""


@contextlib.contextmanager
def steps(what: str, total: int, *, bar: bool | None = None) -> Iterator[Step]:
    """`what` in `total` steps. `bar` forces the progress bar on or off (default: when stderr is a TTY)."""
    if bar is None:
        bar = sys.stderr.isatty()
    began = time.monotonic()
    if not bar:
        done = 0

        def line(step: str) -> None:
            nonlocal done
            done += 1
            log.info("%s: step %d/%d, %s", what, done, total, step)

        yield line
        log.info("%s: done in %.1f s", what, time.monotonic() - began)
        return
    with _bar(what, total) as advance:
        yield advance


@contextlib.contextmanager
def _bar(what: str, total: int) -> Iterator[Step]:
    from rich.console import Console  # only on a terminal
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns: Sequence[Any] = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[step]}"),
    )
    with Progress(*columns, console=Console(stderr=True)) as shown:
        task = shown.add_task(what, total=total, step="")
        started = False

        def advance(step: str) -> None:
            nonlocal started
            shown.update(task, advance=1 if started else 0, step=step)
            started = True

        yield advance
        shown.update(task, completed=total, step="done")
