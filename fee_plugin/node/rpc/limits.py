"""Every limit the RPC enforces, in one place (geth's defaults where geth has one).

No request may crash, stall or balloon the node: bodies, batches, JSON nesting, call gas
and time, concurrent calls, fee-history percentiles, log results and response sizes are
all bounded, and each refusal says which limit and how to stay under it.
"""
import re
import threading
import time
from dataclasses import dataclass

from .errors import INVALID_REQUEST, LIMIT_EXCEEDED, RpcError


@dataclass(frozen=True)
class RpcLimits:
    max_body_bytes: int = 5 * 1024 * 1024  # geth: 5 MiB
    max_batch: int = 1000  # geth: BatchRequestLimit 1000
    max_response_bytes: int = 25 * 1024 * 1024  # geth: BatchResponseMaxSize 25 MB
    max_json_depth: int = 64
    gas_cap: int = 50_000_000  # geth --rpc.gascap
    evm_timeout_seconds: float = 5.0  # geth --rpc.evmtimeout; shared by a batch
    call_workers: int = 2  # eth_call / eth_estimateGas running at once
    call_queue_seconds: float = 5.0  # how long a call waits for a worker before "busy" (a dapp's burst of estimates waits its turn)
    workers: int = 8  # requests executing at once (reads, admission)
    fee_history_blocks: int = 1024
    fee_history_percentiles: int = 100
    log_range_blocks: int = 10_000
    log_results: int = 10_000
    read_timeout_seconds: float = 10.0  # scans (logs, fee history, history); per request
    max_filters: int = 1024  # installed polling filters (idle ones expire after 5 min)
    filter_items: int = 10_000  # transactions buffered per pending-transaction filter
    ws_connections: int = 256  # WebSocket connections at once
    ws_subscriptions: int = 256  # eth_subscribe subscriptions per connection
    ws_requests_in_flight: int = 16  # requests of one connection executing at once
    ws_send_queue: int = 4096  # messages waiting to be sent on one connection; then it is closed
    pending_build_seconds: float = 1.0  # time cap of building the "pending" block


_request = threading.local()


def start_request(limits: RpcLimits) -> None:
    """Start the time budgets of one HTTP request (a batch shares them)."""
    now = time.monotonic()
    _request.call_deadline = now + limits.evm_timeout_seconds
    _request.read_deadline = now + limits.read_timeout_seconds


def call_deadline() -> float:
    return getattr(_request, "call_deadline", float("inf"))


def check_read_budget(what: str) -> None:
    """Called inside long scans: stop one that outlives the request's read budget."""
    if time.monotonic() > getattr(_request, "read_deadline", float("inf")):
        raise RpcError(LIMIT_EXCEEDED, f"{what}: request timed out; narrow the block range")


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


def check_depth(body: bytes, max_depth: int) -> None:
    """Refuse JSON nested deeper than `max_depth` before any recursive parser sees it.

    py_ecc (imported by py-evm) raises the recursion limit to 100,000, so a deeply nested
    body would overflow the C stack inside json.loads instead of raising: scan first.
    Strings are removed first (brackets inside them do not nest); the scan is linear.
    """
    depth = deepest = 0
    for match in _BRACKETS.finditer(_STRING.sub(b'""', body)):
        if match.group() in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > max_depth:
                    raise RpcError(INVALID_REQUEST, f"JSON nested deeper than {max_depth} levels")
        else:
            depth -= 1
