"""eth_subscribe / eth_unsubscribe (geth's newHeads, logs, newPendingTransactions).

Transport-neutral: a connection (ws.py) owns a `Subscriber` whose `send` hands one
encoded notification to the connection without blocking (the connection bounds its own
queue and drops a subscriber that cannot keep up). The `SubscriptionHub` is an EventHub
listener: on the dispatcher thread it encodes each event's result once and sends it to
every matching subscription, so neither the producer nor the pool waits for a socket.
A new subscription is silent until its connection has queued the reply carrying its id
(`activate`), so no notification arrives before the client knows the id.
"""
import json
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Set

from eth.abc import SignedTransactionAPI
from eth_utils import encode_hex

from .errors import INVALID_PARAMS, LIMIT_EXCEEDED, METHOD_NOT_FOUND, SERVER_ERROR, RpcError
from .events import BlockEvent
from .filters import FilterMethods, LogCriteria, new_id
from .params import positional
from .shapes import transaction_json

_serving = threading.local()
NOTIFICATION = '{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"%s","result":%s}}'


def _encode(result: Any) -> str:
    return json.dumps(result, separators=(",", ":"))


@dataclass
class Subscription:
    kind: str  # "newHeads", "logs" or "newPendingTransactions"
    criteria: Optional[LogCriteria] = None
    full_tx: bool = False
    active: bool = False


class Subscriber:
    """One connection's subscriptions; `send(text)` must be thread-safe and non-blocking."""

    def __init__(self, send: Callable[[str], None], max_subscriptions: int) -> None:
        self.send = send
        self.max_subscriptions = max_subscriptions
        self._lock = threading.Lock()
        self._subscriptions: Dict[str, Subscription] = {}

    def subscribe(self, subscription: Subscription) -> str:
        with self._lock:
            if len(self._subscriptions) >= self.max_subscriptions:
                raise RpcError(LIMIT_EXCEEDED, f"too many subscriptions: at most "
                               f"{self.max_subscriptions} per connection")
            subscription_id = new_id()
            self._subscriptions[subscription_id] = subscription
            return subscription_id

    def activate(self) -> None:
        """The replies naming new subscriptions are queued: let them speak."""
        with self._lock:
            for subscription in self._subscriptions.values():
                subscription.active = True

    def unsubscribe(self, subscription_id: Any) -> bool:
        with self._lock:
            return isinstance(subscription_id, str) and self._subscriptions.pop(subscription_id, None) is not None

    def active(self, kind: str) -> List[tuple]:
        with self._lock:
            return [(i, s) for i, s in self._subscriptions.items() if s.active and s.kind == kind]

    def __len__(self) -> int:
        with self._lock:
            return len(self._subscriptions)


@contextmanager
def serving(subscriber: Subscriber):
    """Requests run inside this block (on a worker thread) belong to `subscriber`."""
    previous = getattr(_serving, "subscriber", None)
    _serving.subscriber = subscriber
    try:
        yield
    finally:
        _serving.subscriber = previous


class SubscriptionHub:
    """EventHub listener fanning events out to every connection's subscriptions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: Set[Subscriber] = set()

    def attach(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.add(subscriber)

    def detach(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(subscriber)

    def count(self) -> int:
        """Subscriptions open on the attached connections (the metrics' gauge)."""
        with self._lock:
            subscribers = list(self._subscribers)
        return sum(len(subscriber) for subscriber in subscribers)

    def _each(self, kind: str):
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            for subscription_id, subscription in subscriber.active(kind):
                yield subscriber, subscription_id, subscription

    def on_block(self, event: BlockEvent) -> None:
        header = None
        for subscriber, subscription_id, _ in self._each("newHeads"):
            header = header or _encode(event.header)
            subscriber.send(NOTIFICATION % (subscription_id, header))
        for subscriber, subscription_id, subscription in self._each("logs"):
            for entry, entry_json in event.logs:
                if subscription.criteria.matches(entry):
                    subscriber.send(NOTIFICATION % (subscription_id, _encode(entry_json)))

    def on_transaction(self, tx: SignedTransactionAPI) -> None:
        by_hash = full = None
        for subscriber, subscription_id, subscription in self._each("newPendingTransactions"):
            if subscription.full_tx:
                full = full or _encode(transaction_json(tx, None, None))
                subscriber.send(NOTIFICATION % (subscription_id, full))
            else:
                by_hash = by_hash or _encode(encode_hex(tx.hash))
                subscriber.send(NOTIFICATION % (subscription_id, by_hash))


class SubscriptionMethods(FilterMethods):
    def __init__(self, node, limits) -> None:
        super().__init__(node, limits)
        self.subscriptions = SubscriptionHub()

    def rpc_eth_subscribe(self, params):
        subscriber = getattr(_serving, "subscriber", None)
        if subscriber is None:
            raise RpcError(METHOD_NOT_FOUND, "notifications not supported")
        if not isinstance(params, list) or not params:
            raise RpcError(INVALID_PARAMS, "expected a subscription name")
        kind, options = positional(params, 1, 2)
        if kind == "newHeads":
            subscription = Subscription(kind)
        elif kind == "logs":
            criteria = self.log_criteria(options if options is not None else {})
            subscription = Subscription(kind, LogCriteria(criteria.addresses, criteria.topics))
        elif kind == "newPendingTransactions":
            subscription = Subscription(kind, full_tx=bool(options))
        else:
            raise RpcError(METHOD_NOT_FOUND, f'no "{str(kind)[:64]}" subscription in eth namespace')
        self.events.add(self.subscriptions)
        return subscriber.subscribe(subscription)

    def rpc_eth_unsubscribe(self, params):
        (subscription_id,) = positional(params, 1, 1)
        subscriber = getattr(_serving, "subscriber", None)
        if subscriber is None:
            raise RpcError(METHOD_NOT_FOUND, "notifications not supported")
        if not subscriber.unsubscribe(subscription_id):
            raise RpcError(SERVER_ERROR, "subscription not found")
        return True
