"""Polling filters with geth's rules: new logs/blocks once per poll, OR-lists of topics and
addresses, pending-transaction filters, 5-minute idle expiry, bounds, errors."""
import json
import time

import pytest
from eth_utils import encode_hex, to_checksum_address

from fee_plugin.node.rpc import RpcApi, RpcLimits
from fee_plugin.node.rpc.filters import FILTER_TIMEOUT_SECONDS
from fee_plugin.vault import FEE_CHARGED_TOPIC

from .support.chain import USER_KEYS, VAULT, address
from .support.nodes import clocked_node, deposit, transfer

ALICE, BOB = USER_KEYS[0], USER_KEYS[1]


def request(api, method, *params):
    return json.loads(api.handle_body(json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()))


def call(api, method, *params):
    reply = request(api, method, *params)
    assert "error" not in reply, reply
    return reply["result"]


def topic(value: int) -> str:
    return encode_hex(value.to_bytes(32, "big"))


def owner_topic(key) -> str:
    return "0x" + "00" * 12 + address(key).hex()


@pytest.fixture
def setup():
    node, clock = clocked_node()
    deposit(node, clock, ALICE)
    deposit(node, clock, BOB)
    return node, clock, RpcApi(node)


def mine(node, clock, *txs):
    for tx in txs:
        node.send_transaction(tx)
    clock.advance(1)
    return node.produce()


def until(check, seconds=5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def test_log_filter_answers_new_logs_once(setup):
    node, clock, api = setup
    filter_id = call(api, "eth_newFilter", {"address": to_checksum_address(VAULT), "topics": [topic(FEE_CHARGED_TOPIC)]})
    assert filter_id.startswith("0x") and call(api, "eth_getFilterChanges", filter_id) == []
    block = mine(node, clock, transfer(node, ALICE, 1))
    (log,) = call(api, "eth_getFilterChanges", filter_id)
    assert log["blockHash"] == encode_hex(block.hash) and log["topics"][0] == topic(FEE_CHARGED_TOPIC)
    assert set(log) == {"address", "topics", "data", "blockNumber", "blockHash", "transactionHash",
                        "transactionIndex", "logIndex", "removed"}
    assert call(api, "eth_getFilterChanges", filter_id) == []


def test_topics_are_or_lists_per_position_and_null_is_a_wildcard(setup):
    node, clock, api = setup
    fee = topic(FEE_CHARGED_TOPIC)
    alice_or_bob = call(api, "eth_newFilter", {"topics": [fee, [owner_topic(ALICE), owner_topic(BOB)]]})
    only_bob = call(api, "eth_newFilter", {"topics": [None, owner_topic(BOB)]})
    either_address = call(api, "eth_newFilter", {"address": ["0x" + "11" * 20, to_checksum_address(VAULT)],
                                                 "topics": [[fee]]})
    nobody = call(api, "eth_newFilter", {"address": "0x" + "11" * 20})
    mine(node, clock, transfer(node, ALICE, 1), transfer(node, BOB, 1))
    payers = [log["topics"][1] for log in call(api, "eth_getFilterChanges", alice_or_bob)]
    assert sorted(payers) == sorted([owner_topic(ALICE), owner_topic(BOB)])
    bob_logs = call(api, "eth_getFilterChanges", only_bob)
    assert bob_logs and all(log["topics"][1] == owner_topic(BOB) for log in bob_logs)
    assert len(call(api, "eth_getFilterChanges", either_address)) == 2
    assert call(api, "eth_getFilterChanges", nobody) == []


def test_block_filter_answers_each_new_block_hash_once(setup):
    node, clock, api = setup
    filter_id = call(api, "eth_newBlockFilter")
    first = mine(node, clock, transfer(node, ALICE, 1))
    second = mine(node, clock, transfer(node, ALICE, 2))
    assert call(api, "eth_getFilterChanges", filter_id) == [encode_hex(first.hash), encode_hex(second.hash)]
    assert call(api, "eth_getFilterChanges", filter_id) == []


def test_pending_transaction_filter_answers_accepted_hashes(setup):
    node, _, api = setup
    hashes = call(api, "eth_newPendingTransactionFilter")
    full = call(api, "eth_newPendingTransactionFilter", True)
    tx = transfer(node, ALICE, 1)
    node.send_transaction(tx)
    assert until(lambda: call(api, "eth_getFilterChanges", hashes)) == [encode_hex(tx.hash)]
    (entry,) = until(lambda: call(api, "eth_getFilterChanges", full))
    assert entry["hash"] == encode_hex(tx.hash) and entry["blockHash"] is None
    assert call(api, "eth_getFilterChanges", hashes) == []


def test_pending_transaction_buffer_keeps_the_newest(setup):
    node, _, _ = setup
    api = RpcApi(node, RpcLimits(filter_items=2))
    filter_id = call(api, "eth_newPendingTransactionFilter")
    txs = [transfer(node, ALICE, nonce) for nonce in (1, 2, 3)]
    for tx in txs:
        node.send_transaction(tx)
    until(lambda: api.events._queue.empty() and len(api.filters._filters[filter_id].pending) == 2)
    assert call(api, "eth_getFilterChanges", filter_id) == [encode_hex(tx.hash) for tx in txs[1:]]


def test_get_filter_logs_answers_the_whole_range(setup):
    node, clock, api = setup
    mine(node, clock, transfer(node, ALICE, 1))
    filter_id = call(api, "eth_newFilter", {"fromBlock": "0x0", "topics": [topic(FEE_CHARGED_TOPIC)]})
    assert len(call(api, "eth_getFilterLogs", filter_id)) == 1
    assert call(api, "eth_getFilterChanges", filter_id) == []  # only what is new since installation
    mine(node, clock, transfer(node, ALICE, 2))
    assert len(call(api, "eth_getFilterLogs", filter_id)) == 2
    block_filter = call(api, "eth_newBlockFilter")
    assert request(api, "eth_getFilterLogs", block_filter)["error"] == {"code": -32000, "message": "filter not found"}


def test_a_poll_scans_a_bounded_range_and_the_next_goes_on(setup):
    node, clock, _ = setup
    api = RpcApi(node, RpcLimits(log_range_blocks=2))
    filter_id = call(api, "eth_newFilter", {"topics": [topic(FEE_CHARGED_TOPIC)]})
    for nonce in (1, 2, 3):
        mine(node, clock, transfer(node, ALICE, nonce))
    assert [len(call(api, "eth_getFilterChanges", filter_id)) for _ in range(3)] == [2, 1, 0]


def test_idle_filters_expire_after_five_minutes_and_polling_keeps_them(setup):
    _, _, api = setup
    now = [1000.0]
    api.filters._now = lambda: now[0]
    polled = call(api, "eth_newBlockFilter")
    idle = call(api, "eth_newBlockFilter")
    for _ in range(3):
        now[0] += FILTER_TIMEOUT_SECONDS - 1
        call(api, "eth_getFilterChanges", polled)
    assert request(api, "eth_getFilterChanges", idle)["error"] == {"code": -32000, "message": "filter not found"}
    assert call(api, "eth_uninstallFilter", polled) is True
    assert call(api, "eth_uninstallFilter", polled) is False


def test_filter_count_is_bounded(setup):
    node, _, _ = setup
    api = RpcApi(node, RpcLimits(max_filters=2))
    first = call(api, "eth_newBlockFilter")
    call(api, "eth_newBlockFilter")
    error = request(api, "eth_newBlockFilter")["error"]
    assert error["code"] == -32005 and "at most 2" in error["message"]
    call(api, "eth_uninstallFilter", first)
    call(api, "eth_newBlockFilter")


@pytest.mark.parametrize("criteria, message", [
    ({"fromBlock": "pending"}, "pending logs are not supported"),
    ({"fromBlock": "0x5", "toBlock": "0x2"}, "invalid block range params"),
    ({"blockHash": "0x" + "00" * 32, "fromBlock": "0x1"}, "cannot specify both BlockHash and FromBlock/ToBlock"),
    ({"topics": [None] * 5}, "topics: expected a list of at most 4 entries"),
])
def test_bad_filter_criteria_are_refused(setup, criteria, message):
    _, _, api = setup
    error = request(api, "eth_newFilter", criteria)["error"]
    assert error["code"] == -32602 and message in error["message"]


def test_subscriptions_need_a_websocket(setup):
    _, _, api = setup
    assert request(api, "eth_subscribe", "newHeads")["error"] == {"code": -32601, "message": "notifications not supported"}
