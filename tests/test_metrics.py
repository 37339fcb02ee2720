"""/metrics: Prometheus exposition of a node's state, counters fed block by block, labels
bounded against untrusted method names; README's metrics table matches what a node exports,
and its alert rules are valid PromQL that fire when they should (promtool)."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from fee_plugin.node import TxRejected
from fee_plugin.node.metrics import NodeMetrics
from fee_plugin.node.rpc import RpcApi
from fee_plugin.node.status_index import StatusIndex

from .support.chain import USER_KEYS
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


# -- README ------------------------------------------------------------------------------

README = Path(__file__).resolve().parents[1] / "README.md"
PROMTOOL = shutil.which("promtool")  # scripts/test unpacks it from Debian's prometheus package


def readme_metrics_table():
    """{exported name: (type, label names)} from README's metrics table."""
    text = README.read_text()
    section = text[text.index("**Metrics.**"):]
    section = section[:section.index("```")]
    table = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        names, kind = [cell.strip() for cell in line.strip("|").split("|")[:2]]
        for name, labels in re.findall(r"`(fee_node_[a-z_]+)(?:\{([a-z_,]+)\})?`", names):
            assert name not in table, f"{name} twice in README's metrics table"
            table[name] = (kind, frozenset(labels.split(",")) if labels else frozenset())
    return table


def test_readme_metrics_table_is_what_a_node_exports():
    node, clock, api, metrics = observed_node()
    metrics.cluster_status = lambda: {"role": "producer", "lagBlocks": 0, "etcdRoundTripMs": 1.5, "halted": None,
                                      "commitsFailed": {"fenced": 1}}
    deposit(node, clock, ALICE)  # a block, a transaction, a fee
    try:
        node.send_transaction(transfer(node, ALICE, nonce=0))  # a refusal
    except TxRejected:
        pass
    api.handle_body(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).encode())
    families = list(text_string_to_metric_families(metrics.scrape().decode()))
    timed = {family.name + "_created" for family in families if family.type in ("counter", "histogram")}
    exported = {}
    for family in families:
        if family.name in timed:  # prometheus-client's creation time of each counter/histogram series
            continue
        name = family.name + "_total" if family.type == "counter" else family.name
        labels = frozenset(label for sample in family.samples for label in sample.labels if label != "le")
        exported[name] = (family.type, labels)
    assert readme_metrics_table() == exported


def readme_yaml(title: str):
    """The README's ```yaml block whose first line is `# <title>`, parsed."""
    blocks = re.findall(r"```yaml\n(# [^\n]*)\n(.*?)```", README.read_text(), re.DOTALL)
    (body,) = [body for first, body in blocks if first == f"# {title}"]
    return yaml.safe_load(body)


def test_readme_scrape_config_targets_the_rpc_port():
    (job,) = readme_yaml("prometheus.yml")["scrape_configs"]
    assert job["static_configs"][0]["targets"] == ["127.0.0.1:8545"]


def gauge(job, instance, status, values):
    return {"series": f'fee_node_accounts{{job="{job}",instance="{instance}",status="{status}"}}', "values": values}


def counter(name, job, instance, values, **labels):
    extra = "".join(f',{k}="{v}"' for k, v in labels.items())
    return {"series": f'{name}{{job="{job}",instance="{instance}"{extra}}}', "values": values}


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (scripts/test unpacks it)")
def test_readme_alert_rules_are_valid_and_fire_when_they_should(tmp_path):
    rules = readme_yaml("alert rules")
    (group,) = rules["groups"]
    by_name = {rule["alert"]: rule for rule in group["rules"]}
    assert set(by_name) == {"FeeAccountsRunningDry", "TransactionRejectionRate"}
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    checked = subprocess.run([PROMTOOL, "check", "rules", "rules.yml"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=60, check=False)
    assert checked.returncode == 0 and "SUCCESS: 2 rules found" in checked.stdout, checked.stdout + checked.stderr

    def fired(alert, *labels):
        return [{"exp_labels": dict(each), "exp_annotations": by_name[alert]["annotations"]} for each in labels]

    rising = "0+1x120"  # one more a minute
    tests = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [
        {"interval": "1m", "input_series": [
            # n1: a LOW account more every minute (and ACTIVE ones fewer): fires
            gauge("fee-node", "n1", "LOW", rising), gauge("fee-node", "n1", "EXHAUSTED", "0x120"),
            gauge("fee-node", "n1", "ACTIVE", "200-1x120"),
            # n2: LOW flaps 30, 25, 30, ...: no more than an hour ago, quiet (increase() would read
            # each dip as a counter reset and fire)
            gauge("fee-node", "n2", "LOW", " ".join(["30", "25"] * 60 + ["30"])),
            gauge("fee-node", "n2", "EXHAUSTED", "0x120"),
            # n3: 6 more LOW and 6 more EXHAUSTED an hour: only their sum passes 10, fires
            gauge("fee-node", "n3", "LOW", "0+0.1x120"), gauge("fee-node", "n3", "EXHAUSTED", "0+0.1x120"),
        ], "alert_rule_test": [
            {"eval_time": "100m", "alertname": "FeeAccountsRunningDry",
             "exp_alerts": fired("FeeAccountsRunningDry", {"job": "fee-node", "instance": "n1"},
                                 {"job": "fee-node", "instance": "n3"})},
        ]},
        {"interval": "1m", "input_series": [
            # one node, a third of its submissions refused: fires
            counter("fee_node_transactions_total", "single", "a", "0+10x60", source="produced"),
            counter("fee_node_transactions_total", "single", "a", "0x60", source="imported"),
            counter("fee_node_transactions_rejected_total", "single", "a", "0+5x60", reason="fee"),
            # one node, 1 in 11 refused: quiet
            counter("fee_node_transactions_total", "quiet", "a", "0+10x60", source="produced"),
            counter("fee_node_transactions_rejected_total", "quiet", "a", "0+1x60", reason="nonce"),
            # a cluster: its 10 transactions a minute counted by the producer as produced and by
            # each follower as imported; 3 a minute refused at a follower (3 in 13): fires
            counter("fee_node_transactions_total", "cluster", "p", "0+10x60", source="produced"),
            counter("fee_node_transactions_total", "cluster", "p", "0x60", source="imported"),
            *[counter("fee_node_transactions_total", "cluster", f, "0x60", source="produced") for f in ("f1", "f2")],
            *[counter("fee_node_transactions_total", "cluster", f, "0+10x60", source="imported") for f in ("f1", "f2")],
            counter("fee_node_transactions_rejected_total", "cluster", "f1", "0+3x60", reason="fee"),
            # idle, nothing refused: no 0/0 alert
            counter("fee_node_transactions_total", "idle", "a", "0x60", source="produced"),
        ], "alert_rule_test": [
            {"eval_time": "30m", "alertname": "TransactionRejectionRate",
             "exp_alerts": fired("TransactionRejectionRate", {"job": "single"}, {"job": "cluster"})},
            {"eval_time": "5m", "alertname": "TransactionRejectionRate", "exp_alerts": []},  # for: 10m
        ]},
    ]}
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    tested = subprocess.run([PROMTOOL, "test", "rules", "tests.yml"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, check=False)
    assert tested.returncode == 0, tested.stdout + tested.stderr
