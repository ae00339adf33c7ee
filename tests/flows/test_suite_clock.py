"""The suite's clock (tests/helpers/clock.py): every process of a `--today` run reads one time."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers.clock import MOVED, SHIFT, TODAY, TRAVEL

# A child that imports for a while before it first asks the time, as an `exchange` process
# does, then prints how far its clock is from the real one, in seconds.
CHILD = """
import time
time.sleep(1.0)
import datetime, _time_machine
print(datetime.datetime.now(datetime.UTC).timestamp() - _time_machine.original_time())
"""


def test_a_process_moved_a_day_reads_a_day_ahead_however_long_it_waits_to_read_it():
    env = {k: v for k, v in os.environ.items() if k not in (SHIFT, TODAY, MOVED)}
    env |= {SHIFT: "1", "PYTHONPATH": os.pathsep.join([str(TRAVEL), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True
    )
    ahead = float(done.stdout)
    # Read a second after it was moved, a clock that started ticking only when first read
    # would be that second behind every other process of the run.
    assert abs(ahead - 86_400) < 0.25, ahead
