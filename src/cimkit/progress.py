"""Progress of long runs (a simulation over a test set, calibration): a rich progress bar with images per
second, or a callable ``progress(done_images, total_images)``, or nothing.

``ImageProgress`` is what ``cimkit.calibrate(..., progress=...)`` and ``cimkit.simulate(..., progress=...)``
use: one object for the three forms, so that each long run reports the same way.
"""

from __future__ import annotations

from typing import Any, Callable

from .errors import InputError, short_repr

#: what a ``progress`` argument may be
ProgressArg = bool | Callable[[int, int], Any]


def check_progress(progress: Any, what: str) -> None:
    """An ``InputError`` naming ``what`` unless ``progress`` is True, False or a callable."""
    if isinstance(progress, bool) or (callable(progress) and not isinstance(progress, type)):
        return
    raise InputError(
        f"{what}: progress must be True (a progress bar), False (nothing) or a callable "
        f"progress(done_images, total_images); got {short_repr(progress)}"
    )


class ImageProgress:
    """``with ImageProgress(progress) as bar:`` ``task = bar.add("simulating", total)``, then
    ``bar.update(task, done)`` after each batch.

    ``progress=True`` draws a rich bar per task (images done / total, images per second, time left) on
    ``console`` (default: standard error, so that standard output stays for results); a callable is called
    as ``progress(done, total)`` for the tasks added with ``report=True``; False does nothing. An exception
    the callable raises (``KeyboardInterrupt`` included) propagates to the caller of ``update``. ``unit``:
    what is counted, in the speed column (``img``; a training loop counts ``step``).
    """

    def __init__(self, progress: ProgressArg, console=None, unit: str = "img") -> None:
        self.callback = None if isinstance(progress, bool) else progress
        self.bar = None
        self._tasks: dict[int, tuple[int, bool]] = {}  # id -> (total, report to the callable)
        if progress is True:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                _images_per_second(unit),
                TimeElapsedColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
                console=console or Console(stderr=True),
            )

    def __enter__(self) -> "ImageProgress":
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()

    def add(self, description: str, total: int, completed: int = 0, *, report: bool = True) -> int:
        """A new task of ``total`` images, ``completed`` of them done already (not counted in the speed)."""
        if self.bar is not None:
            task = int(self.bar.add_task(description, total=total, completed=completed))
        else:
            task = len(self._tasks)
        self._tasks[task] = (total, report)
        return task

    def update(self, task: int, completed: int, total: int | None = None) -> None:
        """``completed`` images of ``task`` are done (and its total is now ``total``, when given)."""
        old_total, report = self._tasks[task]
        total = old_total if total is None else total
        self._tasks[task] = (total, report)
        if self.bar is not None:
            from rich.progress import TaskID

            self.bar.update(TaskID(task), completed=completed, total=total)
        if self.callback is not None and report:
            self.callback(int(completed), int(total))


def _images_per_second(unit: str = "img"):
    from rich.progress import ProgressColumn
    from rich.text import Text

    class ImagesPerSecond(ProgressColumn):
        """Items (images, or ``unit``) per second of a task (its recent speed; the average once finished)."""

        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} {unit}/s" if speed else f"- {unit}/s", style="progress.data.speed")

    return ImagesPerSecond()
