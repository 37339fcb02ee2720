"""The producer's clock rule: a block's timestamp is never ahead of wall time.

Lot release follows block time, so a producer whose blocks run ahead of the wall clock
releases (and expires) prepaid fees early. A block may be sealed only once the wall clock
has passed its parent's second; it is then stamped with the current whole second, which
is at least parent + 1 and at most now. At most one block per second follows.

`SystemClock` is the only clock `fee-node run` uses. `ManualClock` is the simulated clock
of `fee-node demo` and the tests: time moves only when the caller says so.
"""
import threading
import time
from typing import Optional


class SystemClock:
    """Wall time; waits are real waits that an event can cut short."""

    def now(self) -> float:
        return time.time()

    def wait(self, event: threading.Event, timeout: Optional[float]) -> bool:
        """Wait until `event` is set or `timeout` seconds passed; True if set."""
        return event.wait(timeout)


class ManualClock:
    """Simulated time for the demo and tests: `advance` moves it, waits return at once."""

    def __init__(self, start: float) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def set(self, t: float) -> None:
        with self._lock:
            if t < self._now:
                raise ValueError(f"a clock does not go back: {t} < {self._now}")
            self._now = float(t)

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += seconds
            return self._now

    def wait(self, event: threading.Event, timeout: Optional[float]) -> bool:
        return event.is_set()


def seal_timestamp(parent_timestamp: int, now: float) -> Optional[int]:
    """The timestamp a block sealed now gets, or None while the wall clock has not passed
    the parent's second (sealing then would stamp the block ahead of wall time)."""
    second = int(now)
    return second if second > parent_timestamp else None


def seconds_until_sealable(parent_timestamp: int, now: float) -> float:
    """How long until `seal_timestamp` allows a child of `parent_timestamp` (0 if now)."""
    return max(0.0, parent_timestamp + 1 - now)
