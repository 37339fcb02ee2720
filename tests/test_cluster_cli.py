"""`fee-node run --etcd ...` flags, `fee-node devnet`, and the RPC methods a cluster adds."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import rlp
from click.testing import CliRunner

from fee_plugin.node import Node
from fee_plugin.node.cluster.config import ClusterConfig, block_bytes_cap
from fee_plugin.node.rpc import RpcApi
from fee_plugin.node.run import run

from .support.chain import EXAMPLE_GENESIS, make_genesis
from .support.cluster import PeerRpc
from .support.etcd import require_etcd


@pytest.mark.parametrize("args, message", [
    (["--etcd", "http://127.0.0.1:1"], "--etcd needs --node-id"),
    (["--node-id", "a"], "--node-id needs --etcd"),
    (["--sync-pin", "1:0x00"], "--sync-pin needs --etcd"),
    (["--etcd", "http://127.0.0.1:1", "--node-id", "a/b"], "node id 'a/b'"),
    (["--etcd", "http://127.0.0.1:1", "--node-id", "a", "--sync-pin", "x"], "NUMBER:0x<32-byte hash>"),
    (["--etcd", "http://127.0.0.1:1", "--node-id", "a", "--etcd-cacert", str(EXAMPLE_GENESIS)],
     "no https:// etcd endpoint"),
    (["--etcd", "https://127.0.0.1:1", "--node-id", "a", "--etcd-cert", str(EXAMPLE_GENESIS)],
     "--etcd-cert and --etcd-key go together"),
])
def test_inconsistent_cluster_flags_are_one_line_errors(args, message):
    result = CliRunner().invoke(run, ["--genesis", str(EXAMPLE_GENESIS), "--memory", *args])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_an_unreachable_etcd_is_a_one_line_error(monkeypatch):
    from fee_plugin.node.cluster import clusternode

    monkeypatch.setattr(clusternode, "JOIN_TIMEOUT_SECONDS", 0.5)
    result = CliRunner().invoke(run, ["--genesis", str(EXAMPLE_GENESIS), "--memory", "--port", "0",
                                      "--etcd", "http://127.0.0.1:9", "--node-id", "a"])
    assert result.exit_code == 1
    assert "cannot join the cluster through etcd http://127.0.0.1:9" in result.output


def test_the_block_cap_keeps_a_block_inside_one_etcd_request():
    assert block_bytes_cap(1_572_864) < 1_572_864 - 1024
    config = ClusterConfig(etcd=("http://127.0.0.1:2379",), node_id="org1",
                           max_request_bytes=200_000)
    assert config.block_bytes_max == block_bytes_cap(200_000) < 200_000


def test_raw_blocks_and_headers_by_number_tag_and_hash_and_no_cluster_status_on_a_single_node():
    node = Node(make_genesis())
    api = RpcApi(node)

    def call(method, *params):
        return api.handle({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})

    genesis = node.chain.get_canonical_block_by_number(0)
    raw = "0x" + rlp.encode(genesis).hex()
    assert call("debug_getRawBlock", "0x0")["result"] == raw
    assert call("debug_getRawBlock", "latest")["result"] == raw
    assert call("debug_getRawBlock", "0x" + genesis.hash.hex())["result"] == raw
    assert call("debug_getRawHeader", "earliest")["result"] == "0x" + rlp.encode(genesis.header).hex()
    assert "not found" in call("debug_getRawBlock", "0x5")["error"]["message"]
    error = call("fee_clusterStatus")["error"]
    assert error["code"] == -32601 and "not in a cluster" in error["message"]


def _listening(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, int(port))) == 0


@pytest.mark.slow
def test_devnet_starts_three_members_and_three_nodes_and_ctrl_c_stops_them_all(tmp_path):
    require_etcd()
    process = subprocess.Popen(
        [sys.executable, "-m", "fee_plugin.node.cli", "devnet", "--nodes", "3", "--dir",
         str(tmp_path / "dn"), "--genesis", str(EXAMPLE_GENESIS)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    ready = threading.Event()

    def read():
        for line in process.stdout:
            lines.append(line)
            if line.startswith("node2: "):
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(90), "".join(lines)
        etcd = next(line for line in lines if line.startswith("etcd: ")).split()[1].split(",")
        nodes = [line.split()[1] for line in lines if line.startswith("node")]
        assert len(etcd) == 3 and len(nodes) == 3
        statuses = [PeerRpc(url).call("fee_clusterStatus") for url in nodes]
        assert {s["nodeId"] for s in statuses} == {"node0", "node1", "node2"}
        deadline = time.monotonic() + 10
        while not any(PeerRpc(url).call("fee_clusterStatus")["role"] == "producer" for url in nodes):
            assert time.monotonic() < deadline, "no producer"
            time.sleep(0.1)
        layout = json.loads((tmp_path / "dn" / "nodes.json").read_text())
        assert [n["id"] for n in layout["nodes"]] == ["node0", "node1", "node2"]
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0, "".join(lines)
    assert "devnet stopped" in "".join(lines)
    assert not any(_listening(url) for url in etcd + nodes)
