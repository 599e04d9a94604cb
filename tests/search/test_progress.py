"""Progress as log records: bars on a terminal, left out of plain logs (cron, CI), and lines
for a library user's own logging."""

import io
import logging

import pytest

from search._progress import report
from search.commands._progress_bars import ProgressBars, show_progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def log():
    logger = logging.getLogger("tests.progress")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def _session(log, stream):
    handler = show_progress(stream, logging.Formatter("%(message)s"))
    log.addHandler(handler)
    for n in (1, 2, 3):
        log.info("trial %d scored", n)
        report(log, "trials", n, 3, front=n, best=f"0.9{n}")
    report(log, "dense training", 40, 160, epoch=3)
    return handler


def test_a_terminal_gets_bars_with_the_front_and_the_other_lines_above_them(log):
    terminal = _Terminal()
    handler = _session(log, terminal)
    assert isinstance(handler, ProgressBars)
    out = terminal.getvalue()
    assert "trials: 100%" in out and "3/3" in out and "front=3" in out and "best=0.93" in out
    assert "trial 2 scored\n" in out
    assert "dense training:  25%" in out and "40/160" in out
    assert "dense training" in handler.bars  # still open: 40 of 160
    assert "trials" not in handler.bars  # closed at 3 of 3


def test_plain_logs_leave_progress_records_out(log):
    plain = io.StringIO()
    handler = _session(log, plain)
    assert not isinstance(handler, ProgressBars)
    assert plain.getvalue() == "trial 1 scored\ntrial 2 scored\ntrial 3 scored\n"


def test_a_library_user_sees_progress_as_lines(log, caplog):
    with caplog.at_level(logging.INFO, logger="tests.progress"):
        log.propagate = True
        report(log, "final stage", 2, 5, trial=7)
    assert set(caplog.messages) == {"final stage: 2/5 trial=7"}
