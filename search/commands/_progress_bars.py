"""The CLI's view of progress records (``search._progress``): tqdm bars on a terminal, with the
other log lines written above them; elsewhere (cron, CI, a file) the records are left out, since
every trial has its own log line."""

from __future__ import annotations

import logging
import shutil
from typing import TextIO

from tqdm import tqdm

from search._progress import PROGRESS


class ProgressBars(logging.Handler):
    """Draws progress records as one tqdm bar per task on ``stream``; writes other records
    above the bars."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self.bars: dict[str, tqdm] = {}

    def emit(self, record: logging.LogRecord) -> None:
        progress = getattr(record, PROGRESS, None)
        if progress is None:
            tqdm.write(self.format(record), file=self.stream)
            return
        task, n, total = progress["task"], progress["n"], progress["total"]
        bar = self.bars.get(task)
        if bar is None or (total is not None and bar.total != total):
            if bar is not None:
                bar.close()
            # The terminal's width, or 80 where it says 0 (tqdm would draw nothing).
            bar = self.bars[task] = tqdm(total=total, desc=task, file=self.stream,
                                         ncols=shutil.get_terminal_size().columns, leave=True)
        bar.set_postfix(progress["postfix"], refresh=False)
        bar.update(n - bar.n)
        bar.refresh()  # records come a few times a minute: each is worth drawing
        if total is not None and n >= total:
            bar.close()
            del self.bars[task]

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()
        super().close()


def without_progress(record: logging.LogRecord) -> bool:
    """A logging filter: everything but progress records."""
    return getattr(record, PROGRESS, None) is None


def show_progress(stream: TextIO, formatter: logging.Formatter) -> logging.Handler:
    """The root logger's handler for ``stream``: bars when it is a terminal, plain lines
    without the progress records otherwise. Returns it (the caller removes it when done)."""
    if stream.isatty():
        handler: logging.Handler = ProgressBars(stream)
    else:
        handler = logging.StreamHandler(stream)
        handler.addFilter(without_progress)
    handler.setFormatter(formatter)
    return handler
