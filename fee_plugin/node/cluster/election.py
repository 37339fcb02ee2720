"""Which node produces blocks: one etcd key, created under a node's lease, is the producer.

A candidate creates the election key only if it does not exist (compare create_revision == 0),
attached to its session's lease; when the lease ends (node stopped or cut off) etcd deletes the
key and the watching candidates race to create it again. This is etcd's own election recipe
(clientv3/concurrency) reduced to one key, without the server-side blocking `campaign` call
that no client deadline can bound. The winner's **fence** is (key, create revision): every
block append compares that the key still exists with that create revision, so a deposed
producer's write fails at etcd even when its head compare alone would pass. Locally a producer
stops before its lease could have expired (Session.alive), so `fence` turns None first.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .client import (
    EtcdCompacted,
    EtcdError,
    EtcdUnavailable,
    KeyValue,
    WatchStream,
    compare_create_revision,
    delete_op,
    put_op,
    range_op,
)
from .session import Session

log = logging.getLogger(__name__)

RETRY_PAUSE_SECONDS = 0.05
ELECTION_IDLE_TIMEOUT_SECONDS = 5.0
# A candidate whose lease is not surely alive cannot campaign: it looks again this soon.
NOT_ALIVE_RECHECK_SECONDS = 0.2


@dataclass(frozen=True)
class Fence:
    """Proof of election to put in a write: the key still exists with this create revision."""

    key: bytes
    revision: int
    lease_id: int


@dataclass(frozen=True)
class Leader:
    """The producer as etcd sees it: its id, its advertised RPC URL, when it was elected."""

    node_id: str
    rpc_url: str
    revision: int

    @classmethod
    def from_kv(cls, kv: KeyValue) -> Leader:
        value = json.loads(kv.value)
        return cls(str(value["id"]), str(value["url"]), kv.create_revision)


def leader_value(node_id: str, rpc_url: str) -> bytes:
    return json.dumps({"id": node_id, "url": rpc_url}, sort_keys=True).encode()


class Election:
    """Campaign for (or only observe) one chain's producer key, in a background thread."""

    def __init__(self, session: Session, key: bytes, node_id: str, rpc_url: str, *,
                 candidate: bool = True,
                 on_change: Callable[[Leader | None], None] | None = None,
                 idle_timeout_seconds: float = ELECTION_IDLE_TIMEOUT_SECONDS) -> None:
        assert node_id, "a node id is required"
        self.session = session
        self.client = session.client
        self.key = key
        self.node_id = node_id
        self.rpc_url = rpc_url
        self.on_change = on_change
        self.idle_timeout_seconds = idle_timeout_seconds
        self._candidate = candidate
        self._changed = threading.Condition()
        self._leader: Leader | None = None
        self._fence: Fence | None = None
        self._stop = threading.Event()
        self._dirty = threading.Event()
        self._stream: WatchStream | None = None
        self._thread: threading.Thread | None = None
        session.add_listener(lambda lease_id: self._wake())

    # -- what callers read -----------------------------------------------------------------

    @property
    def fence(self) -> Fence | None:
        """Our fence while we are the producer and our lease surely exists, else None."""
        fence = self._fence
        if fence is None or not self.session.alive(fence.lease_id):
            return None
        return fence

    @property
    def is_leader(self) -> bool:
        return self.fence is not None

    @property
    def leader(self) -> Leader | None:
        """The producer last seen in etcd (None while there is none)."""
        return self._leader

    @property
    def leader_id(self) -> str | None:
        leader = self._leader
        return leader.node_id if leader else None

    @property
    def leader_url(self) -> str | None:
        leader = self._leader
        return leader.rpc_url if leader else None

    def wait_for(self, predicate: Callable[[Election], bool], timeout_seconds: float) -> bool:
        """Wait until `predicate(self)` holds (checked at each change), at most the timeout."""
        deadline = time.monotonic() + timeout_seconds
        with self._changed:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                # Leadership also ends by the clock (Session.alive) without a notification.
                self._changed.wait(min(remaining, 0.05))
            return True

    def wait_until_leader(self, timeout_seconds: float) -> bool:
        return self.wait_for(lambda e: e.is_leader, timeout_seconds)

    def wait_for_leader(self, timeout_seconds: float) -> Leader | None:
        self.wait_for(lambda e: e.leader is not None, timeout_seconds)
        return self._leader

    # -- what callers do -------------------------------------------------------------------

    def start(self) -> Election:
        assert self._thread is None, "election already started"
        self._thread = threading.Thread(target=self._run, name="etcd-election", daemon=True)
        self._thread.start()
        return self

    def campaign(self) -> None:
        """Be a candidate again (after resign)."""
        self._candidate = True
        self._wake()

    def resign(self) -> bool:
        """Stop campaigning and give up the producer key if we hold it; True if it was ours."""
        self._candidate = False
        fence, self._fence = self._fence, None
        released = False
        if fence is not None:
            try:
                result = self.client.txn([compare_create_revision(fence.key, fence.revision)],
                                         [delete_op(fence.key)])
                released = result.succeeded
            except EtcdError as exc:
                log.warning("resign: could not delete the producer key (it goes with the "
                            "lease): %s", exc)
        self._wake()
        self._notify()
        return released

    def close(self, resign: bool = True) -> None:
        if resign:
            self.resign()
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=self.client.timeout_seconds + 1)

    # -- the loop --------------------------------------------------------------------------

    def _wake(self) -> None:
        self._dirty.set()
        stream = self._stream
        if stream is not None:
            stream.close()

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _set_leader(self, kv: KeyValue | None, fence: Fence | None) -> None:
        leader = Leader.from_kv(kv) if kv is not None else None
        previous, self._leader = self._leader, leader
        self._fence = fence
        self._notify()
        if leader != previous:
            log.info("producer: %s", f"{leader.node_id} (revision {leader.revision})"
                     if leader else "none")
            if self.on_change is not None:
                try:
                    self.on_change(leader)
                except Exception:
                    log.exception("election on_change callback failed")

    def _step(self) -> tuple[int, bool]:
        """Read (and, as a candidate with a live lease, try to take) the key.

        Returns the revision read at, and whether a candidate could not campaign for want of
        a live lease (then the key is looked at again soon rather than only on a change).
        """
        lease_id = self.session.lease_id
        can_campaign = self.session.alive(lease_id)
        if self._candidate and can_campaign:
            result = self.client.txn(
                [compare_create_revision(self.key, 0)],
                [put_op(self.key, leader_value(self.node_id, self.rpc_url), lease_id)],
                [range_op(self.key)])
            if result.succeeded:
                kv = KeyValue(self.key, leader_value(self.node_id, self.rpc_url),
                              result.revision, result.revision, 1, lease_id)
            else:
                kvs = result.range(0).kvs
                kv = kvs[0] if kvs else None
            revision = result.revision
        else:
            read = self.client.range(self.key)
            kv = read.kvs[0] if read.kvs else None
            revision = read.revision
        ours = (kv is not None and self._candidate and kv.lease == lease_id
                and Leader.from_kv(kv).node_id == self.node_id)
        self._set_leader(kv, Fence(self.key, kv.create_revision, lease_id) if ours else None)
        return revision, self._candidate and not can_campaign

    def _wait_for_change(self, revision: int, soon: bool) -> None:
        idle = NOT_ALIVE_RECHECK_SECONDS if soon else self.idle_timeout_seconds
        stream = self.client.watch(self.key, None, revision + 1, idle_timeout_seconds=idle)
        self._stream = stream
        if self._dirty.is_set() or self._stop.is_set():
            stream.close()
        for batch in stream:
            if batch.events:
                return

    def _run(self) -> None:
        while not self._stop.is_set():
            self._dirty.clear()
            try:
                self._wait_for_change(*self._step())
            except (EtcdUnavailable, EtcdCompacted) as exc:  # member gone; history compacted
                log.debug("election: %s", exc)
                self._stop.wait(RETRY_PAUSE_SECONDS)
            except EtcdError as exc:
                log.warning("election: %s", exc)
                self._stop.wait(RETRY_PAUSE_SECONDS)
            finally:
                self._stream = None
