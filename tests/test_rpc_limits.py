"""Every RPC limit, each pinned by a test: nesting, calls (gas, time, concurrency, batches),
fee-history percentiles, log results, response size; and a looping call under load."""
import json
import statistics
import threading
import time
import urllib.request

import pytest
from eth._utils.address import generate_contract_address

from fee_plugin.node.rpc import RpcApi, RpcLimits
from fee_plugin.node.rpc.limits import check_depth

from fee_plugin.vault import FEE_CHARGED_TOPIC

from .chain_helpers import USER_KEYS, VAULT, address, sign
from .support.node_process import NodeProcess, write_genesis
from .support.nodes import clocked_node, deposit, transfer

ALICE = USER_KEYS[0]
LOOP_INIT = bytes.fromhex("635b6000566000526004601cf3")  # deploys JUMPDEST PUSH1 0 JUMP: loops forever


def call(api, method, *params):
    return json.loads(api.handle_body(json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()))


@pytest.fixture
def chain_with_loop():
    node, clock = clocked_node()
    deposit(node, clock, ALICE)
    node.send_transaction(sign(node.chain, ALICE, None, data=LOOP_INIT, gas=100_000, nonce=1))
    clock.advance(1)
    block = node.produce()
    receipt = block.get_receipts(node.chain.chaindb)[0]
    assert receipt.state_root == b"\x01"
    return node, clock, "0x" + generate_contract_address(address(ALICE), 1).hex()


def test_deep_json_is_refused_before_parsing():
    api = RpcApi(clocked_node()[0])
    reply = json.loads(api.handle_body(b"[" * 100_000))
    assert reply["error"] == {"code": -32600, "message": "JSON nested deeper than 64 levels"}
    check_depth(b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', 64)


def test_looping_call_stops_at_the_time_budget(chain_with_loop):
    node, _, loop = chain_with_loop
    api = RpcApi(node, RpcLimits(evm_timeout_seconds=0.5))
    started = time.monotonic()
    reply = call(api, "eth_call", {"to": loop, "gas": hex(50_000_000)})
    assert reply["error"] == {"code": -32000, "message": "execution aborted (timeout = 0.5s)"}
    assert time.monotonic() - started < 3


def test_a_batch_shares_one_time_budget(chain_with_loop):
    node, _, loop = chain_with_loop
    api = RpcApi(node, RpcLimits(evm_timeout_seconds=0.5))
    batch = [{"jsonrpc": "2.0", "id": i, "method": "eth_call", "params": [{"to": loop}]} for i in range(5)]
    started = time.monotonic()
    replies = json.loads(api.handle_body(json.dumps(batch).encode()))
    assert all("timeout" in r["error"]["message"] for r in replies)
    assert time.monotonic() - started < 3  # not 5 x 0.5 s of looping plus overhead


def test_call_gas_is_capped(chain_with_loop):
    node, _, loop = chain_with_loop
    api = RpcApi(node, RpcLimits(gas_cap=100_000))
    reply = call(api, "eth_estimateGas", {"to": loop, "gas": hex(10**9)})
    assert reply["error"]["message"] == "gas required exceeds allowance (100000)"


def test_excess_calls_get_busy_instead_of_queueing(chain_with_loop):
    node, _, loop = chain_with_loop
    api = RpcApi(node, RpcLimits(call_workers=1, call_queue_seconds=0.2))
    assert api.calls.slots.acquire(timeout=1)  # a call holds the only worker
    try:
        started = time.monotonic()
        reply = call(api, "eth_call", {"to": loop})
    finally:
        api.calls.slots.release()
    assert reply["error"]["code"] == -32005 and reply["error"]["message"].startswith("busy")
    assert time.monotonic() - started < 2
    assert call(api, "eth_blockNumber")["result"]  # reads do not need a call worker


def test_fee_history_allows_at_most_100_percentiles():
    api = RpcApi(clocked_node()[0])
    assert "reward" in call(api, "eth_feeHistory", "0x400", "latest", list(range(100)))["result"]
    reply = call(api, "eth_feeHistory", "0x400", "latest", [50] * 150_000)
    assert reply["error"]["code"] == -32602 and "at most 100" in reply["error"]["message"]
    reply = call(api, "eth_feeHistory", "0x1", "latest", [60, 10])
    assert "ascending" in reply["error"]["message"]


def test_get_logs_result_cap_says_to_narrow_the_range():
    node, clock = clocked_node()
    deposit(node, clock, ALICE)
    for nonce in range(1, 4):
        node.send_transaction(transfer(node, ALICE, nonce=nonce))
    clock.advance(1)
    node.produce()
    api = RpcApi(node, RpcLimits(log_results=5))
    reply = call(api, "eth_getLogs", {"fromBlock": "0x0", "address": "0x" + VAULT.hex()})
    assert reply["error"]["code"] == -32005 and "narrow the block range" in reply["error"]["message"]
    fee_charged = "0x" + FEE_CHARGED_TOPIC.to_bytes(32, "big").hex()
    narrowed = call(api, "eth_getLogs", {"fromBlock": "0x2", "topics": [fee_charged]})
    assert len(narrowed["result"]) == 3


def test_response_size_is_bounded():
    node, clock = clocked_node()
    for _ in range(10):
        clock.advance(1)
        node.produce(force_empty=True)
    api = RpcApi(node, RpcLimits(max_response_bytes=2_000))
    reply = call(api, "eth_feeHistory", "0x400", "latest", list(range(100)))
    assert reply["error"]["code"] == -32005 and "exceeds 2000 bytes" in reply["error"]["message"]


@pytest.mark.slow
def test_looping_calls_at_the_gas_cap_do_not_stall_requests_or_blocks(tmp_path):
    """Two clients loop eth_call at the gas cap for the whole run while a third measures
    eth_blockNumber latency: p99 under 1 s, and blocks keep coming (--block-time 1)."""
    from eth_account import Account

    user = Account.from_key(b"\x01" * 32)
    genesis = write_genesis(tmp_path / "genesis.json", noAccount="native")
    node = NodeProcess(genesis, tmp_path / "data", ["--block-time", "1", "--rpc-evm-timeout", "2"])
    try:
        tx = user.sign_transaction({"chainId": 1337, "nonce": 0, "data": LOOP_INIT, "gas": 100_000,
                                    "maxFeePerGas": 2 * 10**9, "maxPriorityFeePerGas": 10**9})
        receipt = node.w3.eth.wait_for_transaction_receipt(
            node.w3.eth.send_raw_transaction(tx.raw_transaction), timeout=30)
        loop = receipt.contractAddress
        stop = threading.Event()
        outcomes = []

        def looper():
            while not stop.is_set():
                outcomes.append(_post(node.url, "eth_call", {"to": loop, "gas": hex(50_000_000)}))

        loopers = [threading.Thread(target=looper) for _ in range(2)]
        for t in loopers:
            t.start()
        first_head = node.w3.eth.block_number
        started = time.monotonic()
        latencies = []
        while time.monotonic() - started < 8:
            t0 = time.monotonic()
            _post(node.url, "eth_blockNumber")
            latencies.append(time.monotonic() - t0)
        blocks = node.w3.eth.block_number - first_head
        stop.set()
        for t in loopers:
            t.join(30)
        p99 = sorted(latencies)[int(len(latencies) * 0.99)]
        assert p99 < 1.0, (p99, statistics.median(latencies))
        assert blocks >= 8 // 2 - 1, blocks  # no worse than twice the 1 s interval
        assert outcomes and all("timeout" in o["error"]["message"] for o in outcomes)
    finally:
        assert node.stop() == 0


def _post(url, method, *params):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())
