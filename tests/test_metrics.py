"""/metrics: Prometheus exposition of a node's state, counters fed block by block, labels
bounded against untrusted method names."""
import json

from prometheus_client.parser import text_string_to_metric_families

from fee_plugin.node import TxRejected
from fee_plugin.node.metrics import NodeMetrics
from fee_plugin.node.rpc import RpcApi
from fee_plugin.node.status_index import StatusIndex

from .chain_helpers import USER_KEYS
from .support.nodes import clocked_node, deposit, transfer

ALICE, BOB = USER_KEYS[:2]


def samples(metrics):
    out = {}
    for family in text_string_to_metric_families(metrics.scrape().decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def observed_node():
    node, clock = clocked_node()
    api = RpcApi(node)
    index = StatusIndex(node.chain, node.genesis)
    index.rebuild()
    metrics = NodeMetrics(node, index, api.methods)
    node.listeners.append(metrics.on_block)
    api.observer = metrics.on_request
    return node, clock, api, metrics


def test_blocks_transactions_fees_and_accounts_are_counted():
    node, clock, _, metrics = observed_node()
    deposit(node, clock, ALICE)
    deposit(node, clock, BOB)
    for nonce in (1, 2):
        node.send_transaction(transfer(node, ALICE, nonce=nonce))
    clock.advance(1)
    block = node.produce()
    s = samples(metrics)
    assert s[("fee_node_head_block_number", ())] == block.number == 3
    assert s[("fee_node_blocks_total", (("source", "produced"),))] == 3
    assert s[("fee_node_transactions_total", (("source", "produced"),))] == 4
    base = block.header.base_fee_per_gas
    fees = 0
    for n in range(1, 4):
        b = node.chain.get_canonical_block_by_number(n)
        previous = 0
        for tx, receipt in zip(b.transactions, b.get_receipts(node.chain.chaindb)):
            fees += (receipt.gas_used - previous) * min(tx.max_fee_per_gas, tx.max_priority_fee_per_gas + base)
            previous = receipt.gas_used
    charged = s[("fee_node_fees_charged_wei_total", (("part", "tip"),))] + \
        s[("fee_node_fees_charged_wei_total", (("part", "base"),))]
    assert charged == fees
    assert s[("fee_node_accounts", (("status", "ACTIVE"),))] == 2
    assert s[("fee_node_block_seconds_count", (("source", "produced"),))] == 3


def test_rejections_by_reason_and_pool_sizes():
    node, clock, _, metrics = observed_node()
    deposit(node, clock, ALICE)
    node.send_transaction(transfer(node, ALICE, nonce=3))  # queued
    for bad in (transfer(node, ALICE, nonce=0), transfer(node, BOB, nonce=0)):
        try:
            node.send_transaction(bad)
        except TxRejected:
            pass
    try:
        node.submit(b"\x02\x00")
    except TxRejected:
        pass
    s = samples(metrics)
    assert s[("fee_node_transactions_rejected_total", (("reason", "nonce"),))] == 1
    assert s[("fee_node_transactions_rejected_total", (("reason", "fee"),))] == 1
    assert s[("fee_node_transactions_rejected_total", (("reason", "decode"),))] == 1
    assert s[("fee_node_txpool_transactions", (("state", "queued"),))] == 1


def test_rpc_method_labels_are_bounded():
    node, _, api, metrics = observed_node()
    for i in range(50):
        api.handle_body(json.dumps({"jsonrpc": "2.0", "id": i, "method": f"evil_{i}"}).encode())
    api.handle_body(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"}).encode())
    s = samples(metrics)
    methods = {dict(labels)["method"] for (name, labels) in s if name == "fee_node_rpc_requests_total"}
    assert methods == {"other", "eth_blockNumber"}
    assert s[("fee_node_rpc_requests_total", (("code", "-32601"), ("method", "other")))] == 50
