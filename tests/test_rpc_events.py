"""The event hub between the producer and filters/subscriptions: the producer's hand-off
never waits, whatever a listener does; a full queue drops events instead of blocking."""
import threading
import time

from fee_plugin.node.rpc.events import EventHub


class StubNode:
    def __init__(self):
        self.listeners, self.tx_listeners = [], []


class StuckListener:
    def __init__(self):
        self.release = threading.Event()
        self.seen = []

    def on_block(self, event):
        self.seen.append(event.block)
        self.release.wait(10)

    def on_transaction(self, tx):
        self.seen.append(tx)


class Built:
    def __init__(self, n):
        self.block, self.receipts = n, ()


def test_nothing_is_queued_while_nobody_listens():
    node = StubNode()
    hub = EventHub(node, max_queued_events=2)
    for listener in node.listeners:
        listener(Built(1))
    assert hub._queue.empty() and hub._thread is None


def test_a_stuck_listener_never_blocks_the_producer():
    node = StubNode()
    hub = EventHub(node, max_queued_events=4)
    stuck = StuckListener()
    hub.add(stuck)
    (on_built,) = node.listeners
    started = time.monotonic()
    for n in range(100):
        on_built(Built(n))
    assert time.monotonic() - started < 0.5  # 100 hand-offs while the listener is stuck
    assert hub.dropped_events >= 100 - 4 - 1
    stuck.release.set()
    deadline = time.monotonic() + 5
    while not hub._queue.empty() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stuck.seen[0] == 0 and len(stuck.seen) <= 6  # the first, and what the queue held
    hub.close()
