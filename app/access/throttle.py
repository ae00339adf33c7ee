"""PURE: slow down guessing. Failed client authentications are counted per (client, source);
past a limit within a window, that pair is refused until its oldest failure leaves the window.

Keyed by source as well as client, so an attacker hammering one client id from one place never
locks out the real client authenticating from its own. Held in memory, per process: each API
process throttles on its own, which bounds guessing per process (see README).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

Key = tuple[str, str]  # (client_id, source address)


@dataclass
class FailureThrottle:
    limit: int = 5
    window_seconds: float = 300.0
    max_keys: int = 10_000  # memory bound: the least recently failing pairs are forgotten first
    _failures: OrderedDict[Key, deque[float]] = field(default_factory=OrderedDict)

    def retry_after(self, key: Key, now: float) -> float:
        """Seconds until this pair may try again; 0 when it may try now."""
        failures = self._recent(key, now)
        if len(failures) < self.limit:
            return 0.0
        return failures[-self.limit] + self.window_seconds - now

    def failed(self, key: Key, now: float) -> None:
        failures = self._recent(key, now)
        failures.append(now)
        self._failures[key] = failures
        self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def withdraw(self, key: Key, at: float) -> None:
        """Take back the failure counted at `at`: the attempt was never judged (the database
        that holds the secret could not be asked)."""
        failures = self._failures.get(key)
        if failures is not None and at in failures:
            failures.remove(at)

    def succeeded(self, key: Key) -> None:
        self._failures.pop(key, None)

    def _recent(self, key: Key, now: float) -> deque[float]:
        failures = self._failures.get(key, deque())
        while failures and failures[0] <= now - self.window_seconds:
            failures.popleft()
        return failures
