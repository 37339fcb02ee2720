"""A node's etcd lease, kept alive in a background thread, with a local bound on its life.

Everything a node owns in etcd (its election key, its registry entry) is attached to this one
lease, so it all disappears together when the node stops refreshing it. The guarantee the
producer relies on: `alive()` is True only while the lease surely still exists at etcd. A
keepalive sent at local monotonic time t that etcd answers with TTL > 0 was applied no earlier
than t, so etcd keeps the lease at least until t + TTL (real time; the margin absorbs clock-rate
error). `alive()` is therefore `now < last_ok_sent + TTL - margin`, and a node that cannot
refresh (etcd unreachable, process stopped) stops before its lease could have expired.
When etcd answers that the lease is gone (TTL 0), the session grants a new one and tells its
listeners, which put their keys back under the new lease.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .client import EtcdClient, EtcdError

log = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS = 2


class Session:
    """One lease per node; `alive()` bounds it on the local monotonic clock."""

    def __init__(self, client: EtcdClient, *, ttl_seconds: int = DEFAULT_TTL_SECONDS,
                 margin_seconds: float | None = None,
                 keepalive_interval_seconds: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        assert ttl_seconds >= 1, f"lease TTL {ttl_seconds} s < 1 s"
        self.client = client
        self.requested_ttl_seconds = ttl_seconds
        self.ttl_seconds = ttl_seconds
        self.margin_seconds = (max(0.25, 0.15 * ttl_seconds) if margin_seconds is None
                               else margin_seconds)
        self.keepalive_interval_seconds = (ttl_seconds / 6 if keepalive_interval_seconds is None
                                           else keepalive_interval_seconds)
        assert 0 < self.margin_seconds < ttl_seconds
        assert 0 < self.keepalive_interval_seconds < ttl_seconds - self.margin_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._lease_id = 0
        self._valid_until = float("-inf")
        self._listeners: list[Callable[[int], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- state -----------------------------------------------------------------------------

    @property
    def lease_id(self) -> int:
        """The current lease (0 before start and after close)."""
        return self._lease_id

    def valid_until(self) -> float:
        """Local monotonic time before which the current lease surely exists at etcd."""
        return self._valid_until

    def alive(self, lease_id: int | None = None) -> bool:
        """The lease (the current one, or `lease_id` if it is still current) surely exists."""
        with self._lock:
            if lease_id is not None and lease_id != self._lease_id:
                return False
            return self._lease_id != 0 and self.clock() < self._valid_until

    def add_listener(self, on_new_lease: Callable[[int], None]) -> None:
        """Call `on_new_lease(lease_id)` (in the session thread) after each new grant."""
        self._listeners.append(on_new_lease)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Session:
        """Grant the first lease (raises EtcdError if etcd is unreachable) and keep it alive."""
        assert self._thread is None, "session already started"
        self._grant()
        self._thread = threading.Thread(target=self._run, name="etcd-session", daemon=True)
        self._thread.start()
        return self

    def close(self, revoke: bool = True) -> None:
        """Stop refreshing; with `revoke`, delete the lease (and every key on it) now."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.client.timeout_seconds + 1)
        with self._lock:
            lease_id, self._lease_id = self._lease_id, 0
            self._valid_until = float("-inf")
        if revoke and lease_id:
            try:
                self.client.lease_revoke(lease_id)
            except EtcdError as exc:
                log.warning("could not revoke lease %x (it expires by itself): %s", lease_id, exc)

    def _grant(self) -> None:
        sent = self.clock()
        lease_id, ttl = self.client.lease_grant(self.requested_ttl_seconds)
        with self._lock:
            self._lease_id = lease_id
            self.ttl_seconds = ttl
            self._valid_until = sent + ttl - self.margin_seconds
        log.info("lease %x granted, TTL %d s", lease_id, ttl)

    def _refresh(self) -> None:
        """One keepalive of the current lease; a new lease if etcd has dropped it."""
        lease_id = self._lease_id
        remaining = self._valid_until - self.clock()
        attempt = max(0.1, min(self.keepalive_interval_seconds * 2, remaining))
        sent = self.clock()
        ttl = self.client.lease_keepalive(lease_id, timeout_seconds=attempt,
                                          attempt_timeout_seconds=attempt / 2)
        if ttl > 0:
            with self._lock:
                if self._lease_id == lease_id:
                    self._valid_until = max(self._valid_until, sent + ttl - self.margin_seconds)
            return
        log.warning("lease %x is gone at etcd; granting a new one", lease_id)
        with self._lock:
            self._valid_until = float("-inf")
        self._grant()
        for listener in self._listeners:
            try:
                listener(self._lease_id)
            except Exception:
                log.exception("session listener failed after new lease %x", self._lease_id)

    def _run(self) -> None:
        while not self._stop.wait(self.keepalive_interval_seconds):
            try:
                self._refresh()
            except EtcdError as exc:
                log.warning("lease %x keepalive failed (alive for %.2f s more): %s",
                            self._lease_id, self._valid_until - self.clock(), exc)
            except Exception:
                log.exception("lease %x keepalive failed", self._lease_id)
