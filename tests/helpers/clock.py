"""The suite's one clock: today, or the day given by `pytest --today YYYY-MM-DD`.

Every date a test uses comes from this clock (the `clock` fixture in conftest.py), so the suite
passes whatever day it is run on. `--today` (or EXCHANGE_TEST_TODAY) proves it: the wall clock of
the test process, of each xdist worker and of every Python process a test starts (through
travel/sitecustomize.py beside this module) is moved by the same whole number of days, with
time-machine. It keeps ticking, and the monotonic clocks that asyncio and timeouts use are left
alone. The exchange reads only the wall clock, so it sees the day the tests see; the database
servers' clocks are not moved, and the exchange never asks them the time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

TODAY = "EXCHANGE_TEST_TODAY"  # the day asked for, YYYY-MM-DD
SHIFT = "EXCHANGE_TEST_CLOCK_SHIFT"  # whole days the clock is moved by, in every process of a run
MOVED = "EXCHANGE_TEST_CLOCK_MOVED"  # the process whose clock is moved already (not twice)
TRAVEL = Path(__file__).resolve().parent / "travel"  # its sitecustomize moves child processes


@dataclass(frozen=True)
class Clock:
    """The day the suite runs as, and the example's dates as they are on that day."""

    today: date

    def moved(self, value: Any) -> Any:
        """A JSON value written in the example's frame (the day the example was written: its
        consents of 2026-11-18, its release on 2026-12-01) moved to today, as the example is."""
        from app.notices import examples

        return examples.moved(value, self.today - examples.WRITTEN_ON)


def start(today: str | None) -> None:
    """Move this process's clock to `today` (keeping the time of day), or by the days that the
    process which started this one moved. Called once, as pytest configures itself."""
    if today and SHIFT in os.environ and os.environ.get(TODAY) != today:
        raise ValueError(f"--today {today}, but this process's clock was moved to another day")
    if SHIFT not in os.environ and today:
        days = (date.fromisoformat(today) - datetime.now(UTC).date()).days
        os.environ[SHIFT] = str(days)  # xdist workers and every process a test starts inherit it
        os.environ[TODAY] = today
        paths = [str(TRAVEL), *filter(None, [os.environ.get("PYTHONPATH")])]
        os.environ["PYTHONPATH"] = os.pathsep.join(paths)
    days = int(os.environ.get(SHIFT, "0"))
    if days and os.environ.get(MOVED) != str(os.getpid()):
        import time_machine

        moved = time_machine.travel(datetime.now(UTC) + timedelta(days=days), tick=True).start()
        moved.time_ns()  # it ticks from its first reading (travel/sitecustomize.py)
        os.environ[MOVED] = str(os.getpid())
