"""The methods wallets and tools call beyond the basics: block contents by position, the
pending block, eth_createAccessList, node facts, txpool_*, rpc_modules, creation calls,
and the pool's refusals with geth's texts. JSON shapes are pinned to geth's field names."""
import json
import re

import pytest
from eth._utils.address import generate_contract_address
from eth_utils import encode_hex, to_checksum_address

from fee_plugin.node import TxRejected
from fee_plugin.node.rpc import RpcApi, RpcLimits

from .support.chain import COINBASE, REPO, USER_KEYS, address, sign
from .support.geth_shapes import GETH_BLOCK, GETH_RECEIPT, GETH_TX_1559
from .support.nodes import clocked_node, deposit, transfer

ALICE, BOB = USER_KEYS[0], USER_KEYS[1]
def request(api, method, *params):
    return json.loads(api.handle_body(json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()))


def call(api, method, *params):
    reply = request(api, method, *params)
    assert "error" not in reply, reply
    return reply["result"]


def init_code(runtime: bytes) -> bytes:
    """Init code that deploys `runtime` (PUSH1 n PUSH1 10 PUSH0 CODECOPY PUSH1 n PUSH0 RETURN)."""
    n = len(runtime)
    return bytes([0x60, n, 0x60, 0x0A, 0x5F, 0x39, 0x60, n, 0x5F, 0xF3]) + runtime


@pytest.fixture
def setup():
    node, clock = clocked_node()
    deposit(node, clock, ALICE)
    node.send_transaction(transfer(node, ALICE, 1, to=address(BOB), value=3))
    node.send_transaction(transfer(node, ALICE, 2, to=address(BOB), value=4))
    clock.advance(1)
    block = node.produce()
    return node, clock, RpcApi(node), block


def test_block_receipts_and_transactions_by_position(setup):
    _, _, api, block = setup
    number, block_hash = hex(block.number), encode_hex(block.hash)
    receipts = call(api, "eth_getBlockReceipts", number)
    assert receipts == call(api, "eth_getBlockReceipts", block_hash) == call(api, "eth_getBlockReceipts", "latest")
    assert [set(r) for r in receipts] == [GETH_RECEIPT, GETH_RECEIPT]
    assert [r["transactionHash"] for r in receipts] == [encode_hex(tx.hash) for tx in block.transactions]
    for index, tx in enumerate(block.transactions):
        by_number = call(api, "eth_getTransactionByBlockNumberAndIndex", number, hex(index))
        assert by_number == call(api, "eth_getTransactionByBlockHashAndIndex", block_hash, hex(index))
        assert by_number == call(api, "eth_getTransactionByHash", encode_hex(tx.hash))
        assert set(by_number) == GETH_TX_1559
    assert call(api, "eth_getTransactionByBlockNumberAndIndex", number, "0x2") is None
    assert call(api, "eth_getBlockTransactionCountByNumber", number) == "0x2"
    assert call(api, "eth_getBlockTransactionCountByHash", block_hash) == "0x2"
    assert set(call(api, "eth_getBlockByNumber", number, False)) == GETH_BLOCK


def test_unknown_blocks_answer_null_like_geth(setup):
    _, _, api, _ = setup
    unknown = "0x" + "ee" * 32
    for method, params in [("eth_getBlockReceipts", ["0x99"]), ("eth_getBlockReceipts", [unknown]),
                           ("eth_getTransactionByBlockNumberAndIndex", ["0x99", "0x0"]),
                           ("eth_getTransactionByBlockHashAndIndex", [unknown, "0x0"]),
                           ("eth_getBlockTransactionCountByNumber", ["0x99"]),
                           ("eth_getBlockTransactionCountByHash", [unknown]),
                           ("eth_getUncleCountByBlockNumber", ["0x99"]), ("eth_getUncleCountByBlockHash", [unknown])]:
        assert call(api, method, *params) is None, method


def test_no_uncles_ever(setup):
    _, _, api, block = setup
    assert call(api, "eth_getUncleCountByBlockNumber", "latest") == "0x0"
    assert call(api, "eth_getUncleCountByBlockHash", encode_hex(block.hash)) == "0x0"
    assert call(api, "eth_getUncleByBlockNumberAndIndex", "latest", "0x0") is None
    assert call(api, "eth_getUncleByBlockHashAndIndex", encode_hex(block.hash), "0x0") is None


def test_node_facts(setup):
    _, _, api, _ = setup
    assert call(api, "net_listening") is True and call(api, "net_peerCount") == "0x0"
    assert call(api, "eth_coinbase") == to_checksum_address(COINBASE)
    assert call(api, "eth_mining") is True and call(api, "eth_hashrate") == "0x0"
    assert call(api, "eth_protocolVersion") == "0x44"
    assert call(api, "eth_blobBaseFee") == "0x1"  # no blob gas used: the minimum
    assert call(api, "rpc_modules") == {m: "1.0" for m in ("debug", "eth", "fee", "net", "rpc", "txpool", "web3")}


def test_txpool_status_content_and_inspect(setup):
    node, _, api, _ = setup
    node.send_transaction(transfer(node, ALICE, 3))
    node.send_transaction(transfer(node, ALICE, 5))  # a nonce gap: queued
    assert call(api, "txpool_status") == {"pending": "0x1", "queued": "0x1"}
    content = call(api, "txpool_content")
    alice = to_checksum_address(address(ALICE))
    assert list(content["pending"][alice]) == ["3"] and list(content["queued"][alice]) == ["5"]
    assert set(content["pending"][alice]["3"]) == GETH_TX_1559 and content["pending"][alice]["3"]["blockHash"] is None
    assert call(api, "txpool_contentFrom", alice) == content | {"pending": content["pending"][alice],
                                                                 "queued": content["queued"][alice]}
    summary = call(api, "txpool_inspect")["pending"][alice]["3"]
    assert summary.startswith(to_checksum_address(b"\x42" * 20) + ": 1 wei + 21000 gas")


def test_pending_block_is_built_from_the_pool(setup):
    node, _, api, block = setup
    bob = "0x" + address(BOB).hex()
    tx = transfer(node, ALICE, 3, to=address(BOB), value=10)
    node.send_transaction(tx)
    pending = call(api, "eth_getBlockByNumber", "pending", True)
    assert set(pending) == GETH_BLOCK and (pending["hash"], pending["nonce"], pending["miner"]) == (None, None, None)
    assert pending["number"] == hex(block.number + 1) and pending["parentHash"] == encode_hex(block.hash)
    (entry,) = pending["transactions"]
    assert entry["hash"] == encode_hex(tx.hash) and entry["blockHash"] is None
    assert int(call(api, "eth_getBalance", bob, "pending"), 16) == int(call(api, "eth_getBalance", bob), 16) + 10
    assert call(api, "eth_getTransactionCount", "0x" + address(ALICE).hex(), "pending") == "0x4"
    assert call(api, "eth_getBlockTransactionCountByNumber", "pending") == "0x1"
    assert call(api, "eth_getTransactionByBlockNumberAndIndex", "pending", "0x0")["hash"] == encode_hex(tx.hash)
    assert call(api, "eth_getBlockReceipts", "pending")[0]["status"] == "0x1"
    assert call(api, "eth_getBalance", "0x" + address(ALICE).hex(), "pending") != call(
        api, "eth_getBalance", "0x" + address(ALICE).hex(), "latest")


def test_pending_block_is_cached_per_head_and_pool_change(setup):
    node, clock, api, _ = setup
    first = api.pending.get()
    assert api.pending.get() is first
    node.send_transaction(transfer(node, ALICE, 3))
    second = api.pending.get()
    assert second is not first and len(second.block.transactions) == 1
    clock.advance(1)
    node.produce()
    third = api.pending.get()
    assert third is not second and third.block.transactions == ()


def test_pending_block_build_is_capped_in_time(setup):
    node, _, _, _ = setup
    api = RpcApi(node, RpcLimits(pending_build_seconds=0))
    node.send_transaction(transfer(node, ALICE, 3))
    assert call(api, "eth_getBlockByNumber", "pending", False)["transactions"] == []  # nothing fits in 0 s


def test_calls_at_pending_see_a_pending_deployment(setup):
    node, _, api, _ = setup
    returns_42 = bytes.fromhex("602a5f5260205ff3")  # PUSH1 42 PUSH0 MSTORE PUSH1 32 PUSH0 RETURN
    node.send_transaction(sign(node.chain, ALICE, None, data=init_code(returns_42), gas=100_000, nonce=3))
    created = to_checksum_address(generate_contract_address(address(ALICE), 3))
    assert call(api, "eth_getCode", created, "pending") == encode_hex(returns_42)
    assert int(call(api, "eth_call", {"to": created}, "pending"), 16) == 42
    assert call(api, "eth_call", {"to": created}, "latest") == "0x"


def test_creation_calls_and_estimates_work_without_to(setup):
    _, _, api, _ = setup
    returns_42 = bytes.fromhex("602a5f5260205ff3")
    call_object = {"from": "0x" + address(ALICE).hex(), "data": encode_hex(init_code(returns_42))}
    assert call(api, "eth_call", call_object) == encode_hex(returns_42)
    assert int(call(api, "eth_estimateGas", call_object), 16) > 53_000
    reverting = {"data": "0x60006000fd"}  # PUSH1 0 PUSH1 0 REVERT in init code
    assert request(api, "eth_estimateGas", reverting)["error"] == {"code": 3, "message": "execution reverted",
                                                                   "data": "0x"}


def test_create_access_list_lists_what_the_call_touches_and_its_gas(setup):
    node, clock, api, _ = setup
    reads_slot_5 = bytes.fromhex("6005545f5260205ff3")  # SLOAD(5), return it
    node.send_transaction(sign(node.chain, ALICE, None, data=init_code(reads_slot_5), gas=100_000, nonce=3))
    target = generate_contract_address(address(ALICE), 3)
    calls_target = bytes.fromhex("5f5f5f5f73") + target + bytes.fromhex("5afa00")  # STATICCALL(target)
    node.send_transaction(sign(node.chain, ALICE, None, data=init_code(calls_target), gas=100_000, nonce=4))
    clock.advance(1)
    node.produce()
    caller = generate_contract_address(address(ALICE), 4)
    deposit(node, clock, BOB)
    result = call(api, "eth_createAccessList", {"from": "0x" + address(BOB).hex(), "to": "0x" + caller.hex(),
                                                "gas": hex(100_000)})
    assert result["accessList"] == [{"address": to_checksum_address(target), "storageKeys": ["0x" + "00" * 31 + "05"]}]
    access_list = [(target, (5,))]
    tx = sign(node.chain, BOB, caller, gas=100_000, kind="access_list", access_list=access_list, nonce=1)
    node.send_transaction(tx)
    clock.advance(1)
    block = node.produce()
    receipt = block.get_receipts(node.chain.chaindb)[0]
    assert int(result["gasUsed"], 16) == receipt.gas_used and "error" not in result


def test_refusals_use_geth_texts(setup):
    node, _, _, _ = setup
    node.send_transaction(transfer(node, ALICE, 3))
    with pytest.raises(TxRejected, match="^already known$"):
        node.send_transaction(transfer(node, ALICE, 3))
    with pytest.raises(TxRejected, match="^replacement transaction underpriced"):
        node.send_transaction(transfer(node, ALICE, 3, value=2))
    with pytest.raises(TxRejected, match="^nonce too low"):
        node.send_transaction(transfer(node, ALICE, 0))


def test_readme_method_table_lists_every_method(setup):
    """README's JSON-RPC table names exactly the methods the node answers."""
    _, _, api, _ = setup
    text = (REPO / "README.md").read_text()
    table = text.split("## JSON-RPC methods", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`([a-z0-9]+_[A-Za-z0-9]+)`", table))
    assert listed == set(api.methods)
