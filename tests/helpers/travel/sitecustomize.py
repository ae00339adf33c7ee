"""Moves the clock of every Python process that a test run under `--today` starts.

tests/helpers/clock.py puts this folder on PYTHONPATH for such a run only, so Python imports this
module as it starts: an `exchange` command, a worker, the API processes that `exchange serve
--workers` spawns. Each moves its wall clock by the run's whole days (EXCHANGE_TEST_CLOCK_SHIFT), as
the test process did, so that every process of the run agrees on the day.
"""

import os

if int(os.environ.get("EXCHANGE_TEST_CLOCK_SHIFT", "0")):
    from datetime import UTC, datetime, timedelta

    import time_machine

    days = timedelta(days=int(os.environ["EXCHANGE_TEST_CLOCK_SHIFT"]))
    # time-machine's clock starts ticking when it is first read, not when it is moved: read
    # it now, or a process that imports for a second first runs a second behind the others.
    time_machine.travel(datetime.now(UTC) + days, tick=True).start().time_ns()
    os.environ["EXCHANGE_TEST_CLOCK_MOVED"] = str(os.getpid())  # once a process: helpers/clock.py
