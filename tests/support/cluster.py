"""A real cluster for the failure tests: etcd members and `fee-node run --etcd` processes on
loopback (fee_plugin.node.cluster.devnet_nodes), with RPC helpers and a load generator.

Every wait is bounded and names what it waited for; nodes are stopped by pid at the end.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

from eth_account import Account
from eth_hash.auto import keccak

from fee_plugin.chain import genesis_header
from fee_plugin.genesis import load_genesis
from fee_plugin.node.cluster import BlockLog, ChainKeys, EtcdClient
from fee_plugin.node.cluster.devnet_nodes import FeeDevnet
from fee_plugin.node.cluster.peer import PeerError, PeerRpc

from .etcd import wait_until
from .node_process import write_genesis

ETHER = 10**18
GWEI = 10**9
SINK = "0x" + "42" * 20
CHAIN_ID = 1337


def cluster_genesis(path: Path, senders: list) -> Path:
    """The example genesis with `senders` funded; they pay natively (no deposit first)."""
    return write_genesis(path, alloc={a.address: 10 * ETHER for a in senders}, noAccount="native")


def senders(count: int, first: int = 0x60) -> list:
    return [Account.from_key(bytes([first + i]) * 32) for i in range(count)]


def signed_transfer(account, nonce: int) -> str:
    raw = account.sign_transaction({
        "chainId": CHAIN_ID, "nonce": nonce, "to": SINK, "value": 1, "gas": 21_000,
        "maxFeePerGas": 2 * GWEI, "maxPriorityFeePerGas": GWEI}).raw_transaction
    return "0x" + raw.hex()


class Cluster:
    """FeeDevnet plus what the tests ask of it."""

    def __init__(self, directory: Path, genesis: Path, count: int = 3, extra_args=()) -> None:
        self.devnet = FeeDevnet.open(directory, count, genesis, list(extra_args))
        self.genesis = load_genesis(self.devnet.genesis_path)
        self.keys = ChainKeys(self.genesis.chain_id, genesis_header(self.genesis).hash)

    def start(self) -> Cluster:
        self.devnet.start()
        return self

    def stop(self) -> None:
        self.devnet.stop()

    @property
    def count(self) -> int:
        return len(self.devnet.specs)

    def running(self) -> list[int]:
        return [i for i in range(self.count) if self.devnet.is_running(i)]

    def rpc(self, index: int, method: str, *params, timeout_seconds: float = 10.0):
        peer = PeerRpc(self.devnet.urls[index], timeout_seconds)
        try:
            return peer.call(method, *params)
        finally:
            peer.close()

    def status(self, index: int) -> dict:
        return self.rpc(index, "fee_clusterStatus")

    def log(self, index: int) -> str:
        return self.devnet.specs[index].log_path.read_text(errors="replace")

    def block_log(self) -> BlockLog:
        return BlockLog(EtcdClient(self.devnet.etcd.client_urls), self.keys)

    def producer(self, timeout_seconds: float = 10.0, among=None) -> int:
        """The index of the node that says it produces (waits for one)."""
        among = self.running() if among is None else among

        def find():
            for index in among:
                try:
                    if self.status(index)["role"] == "producer":
                        return index + 1
                except PeerError:
                    pass
            return None

        return wait_until(find, timeout_seconds, "a producer") - 1

    def wait_converged(self, timeout_seconds: float = 30.0, among=None) -> dict:
        """Every running node holds etcd's head block (same hash and state root); its status."""
        among = self.running() if among is None else among

        def converged():
            head = self.block_log().head()
            statuses = [self.status(i) for i in among]
            same = all(s["localHead"] == head.number and s["localHash"] == "0x" + head.hash.hex()
                       for s in statuses)
            roots = {s["stateRoot"] for s in statuses}
            return statuses[0] if same and len(roots) == 1 else None

        return wait_until(converged, timeout_seconds, "every node at etcd's head", 0.1)

    def mined_hashes(self, index: int) -> list[str]:
        head = int(self.rpc(index, "eth_blockNumber"), 16)
        hashes = []
        for number in range(1, head + 1):
            hashes += self.rpc(index, "eth_getBlockByNumber", hex(number), False)["transactions"]
        return hashes


class Load:
    """Client threads, each one sender sending signed transfers to a node at a steady rate.

    A client whose node does not answer sends the same transaction to the next node (a hash
    is the same wherever it goes). Every hash a node returned (or reported "already known")
    is in `accepted`.
    """

    def __init__(self, cluster: Cluster, accounts: list, rate_per_client: float = 8.0) -> None:
        self.cluster = cluster
        self.accounts = accounts
        self.period_seconds = 1.0 / rate_per_client
        self.accepted: list[str] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(n, a), daemon=True)
                         for n, a in enumerate(accounts)]

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def count(self) -> int:
        with self._lock:
            return len(self.accepted)

    def _client(self, number: int, account) -> None:
        node = number % self.cluster.count
        nonce = 0
        while not self._stop.is_set():
            raw = signed_transfer(account, nonce)
            tx_hash = self._send(node, raw)
            if tx_hash is None:
                node = (node + 1) % self.cluster.count
                self._stop.wait(0.05)
                continue
            with self._lock:
                self.accepted.append(tx_hash)
            nonce += 1
            self._stop.wait(self.period_seconds)

    def _send(self, node: int, raw: str) -> str | None:
        peer = PeerRpc(self.cluster.devnet.urls[node], 5.0)
        try:
            return peer.call("eth_sendRawTransaction", raw)
        except PeerError as err:
            if "already known" in str(err):
                return _tx_hash(raw)
            with self._lock:
                self.errors.append(str(err))
            return None
        finally:
            peer.close()


def _tx_hash(raw: str) -> str:
    return "0x" + keccak(bytes.fromhex(raw[2:])).hex()


def measure_failover(cluster: Cluster, killed: int, timeout_seconds: float = 15.0) -> dict:
    """After the producer `killed` was killed: seconds until another node is elected and until
    etcd's head moves past where it was at that election (a block of the new producer)."""
    started = time.monotonic()
    survivors = [i for i in cluster.running() if i != killed]
    new = cluster.producer(timeout_seconds, among=survivors)
    elected = time.monotonic() - started
    head = cluster.block_log().head().number
    wait_until(lambda: cluster.block_log().head().number > head, timeout_seconds,
               "the new producer's first block", 0.02)
    return {"producer": new, "elected_seconds": elected,
            "first_block_seconds": time.monotonic() - started}
