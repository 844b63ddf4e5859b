"""An import's progress: upload bytes then records, as bars on a terminal and plain lines otherwise.

Its two methods are the SDK's callbacks (``on_upload`` for ``create_batch``, ``on_batch`` for
``wait``), so the commands need no polling loop of their own.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from batchyard.client import Batch


def _is_bytes(task: Task) -> bool:
    return bool(task.fields.get("unit") == "bytes")


class _Amount(ProgressColumn):
    """Done/total in the task's unit: bytes (kB, MB…) or records."""

    def render(self, task: Task) -> Text:
        done, total = int(task.completed), task.total
        if _is_bytes(task):
            shown = decimal(done) + (f"/{decimal(int(total))}" if total is not None else "")
        else:
            shown = f"{done:,}" + (f"/{int(total):,} records" if total is not None else " records")
        return Text(shown, style="progress.download")


class _Rate(ProgressColumn):
    """Bytes or records per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None:
            return Text("", style="progress.data.speed")
        shown = f"{decimal(int(speed))}/s" if _is_bytes(task) else f"{speed:,.0f} rec/s"
        return Text(shown, style="progress.data.speed")


class ImportProgress:
    """Shows one import: a bytes bar while uploading, a records bar while processing."""

    def __init__(self, console: Console, name: str) -> None:
        self.console = console
        self.name = name
        self.live = console.is_terminal
        self._bars = Progress(
            TextColumn("[bold]{task.description:<16}"),
            BarColumn(),
            TaskProgressColumn(),
            _Amount(),
            _Rate(),
            TimeRemainingColumn(),
            console=console,
        )
        self._upload: TaskID | None = None
        self._records: TaskID | None = None
        self._status: str | None = None
        self._announced = False

    def __enter__(self) -> ImportProgress:
        if self.live:
            self._bars.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.live:
            self._bars.stop()

    def on_upload(self, sent: int, total: int | None) -> None:
        """SDK upload callback: bytes sent so far of ``total``."""
        if not self.live:
            if not self._announced:
                size = f" ({decimal(total)})" if total is not None else ""
                self.console.print(f"uploading {self.name}{size}")
                self._announced = True
            return
        if self._upload is None:
            self._upload = self._bars.add_task("uploading", total=total, unit="bytes")
        self._bars.update(self._upload, completed=sent)

    def uploaded(self, batch: Batch) -> None:
        """The server accepted the batch."""
        if self.live and self._upload is not None:
            task = self._bars.tasks[self._upload]
            self._bars.update(self._upload, total=task.completed, description="uploaded")
        self.console.print(f"batch {batch.id} created ({batch.status.value})")

    def on_batch(self, batch: Batch) -> None:
        """SDK wait callback: the batch's latest state."""
        status = batch.status.value
        if not self.live:
            if status != self._status:
                self.console.print(
                    f"{status}: {batch.processed_operations:,}/"
                    f"{'?' if batch.total_operations is None else f'{batch.total_operations:,}'}"
                    " records"
                )
            self._status = status
            return
        if self._records is None:
            self._records = self._bars.add_task(status, total=None, unit="records")
        self._bars.update(
            self._records,
            description=status,
            total=batch.total_operations,
            completed=batch.processed_operations,
        )
        self._status = status
