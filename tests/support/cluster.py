"""A real cluster for the failure tests: etcd members and `fee-node run --etcd` processes on
loopback (fee_plugin.node.cluster.devnet_nodes), with RPC helpers and a load generator.

Every wait is bounded and names what it waited for; nodes are stopped by pid at the end.
"""
from __future__ import annotations

import collections
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

    def producer_revision(self) -> int | None:
        """The etcd revision at which the current producer was elected (None: no producer)."""
        kv = EtcdClient(self.devnet.etcd.client_urls).get(self.keys.election)
        return kv.create_revision if kv is not None else None

    def first_block_after(self, revision: int) -> int | None:
        """The first block etcd committed after `revision` (None: none yet)."""
        blocks = self.block_log()
        head = blocks.head().number
        for start in range(max(1, blocks.oldest() or 1), head + 1, blocks.range_blocks_max):
            last = min(head, start + blocks.range_blocks_max - 1)
            for logged in blocks.get_range(start, last):
                if logged.revision > revision:
                    return logged.number
        return None

    def mined_hashes(self, index: int) -> list[str]:
        head = int(self.rpc(index, "eth_blockNumber"), 16)
        hashes = []
        for number in range(1, head + 1):
            hashes += self.rpc(index, "eth_getBlockByNumber", hex(number), False)["transactions"]
        return hashes


class Load:
    """Client threads, each one sender sending signed transfers to a node at a steady rate.

    Client n starts at node n % count. A client whose node does not answer sends the same
    transaction to the next node (a hash is the same wherever it goes), skipping nodes marked
    down; a client whose node was marked down (`node_down`) stops at its first failed send
    instead, so what it sent there waits in that node's pool journal. Every hash a node
    returned (or reported "already known") is recorded with that node and the time.
    """

    def __init__(self, cluster: Cluster, accounts: list, rate_per_client: float = 8.0) -> None:
        self.cluster = cluster
        self.accounts = accounts
        self.period_seconds = 1.0 / rate_per_client
        self.records: list[tuple[str, int, float]] = []  # (hash, node, monotonic time)
        self.errors: list[str] = []
        self.stopped_clients: list[int] = []
        self._down: set[int] = set()
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

    def node_down(self, index: int) -> None:
        """Node `index` is about to go down: send nothing more to it (see the class doc)."""
        with self._lock:
            self._down.add(index)

    @property
    def accepted(self) -> list[str]:
        with self._lock:
            return [tx_hash for tx_hash, _, _ in self.records]

    def count(self) -> int:
        with self._lock:
            return len(self.records)

    def returned_by(self, nodes, after: float = float("-inf"),
                    before: float = float("inf")) -> set[str]:
        """Hashes that one of `nodes` returned between the two monotonic times."""
        nodes = set(nodes)
        with self._lock:
            return {h for h, node, at in self.records if node in nodes and after <= at < before}

    def home(self, number: int) -> int:
        return number % self.cluster.count

    def _client(self, number: int, account) -> None:
        node = self.home(number)
        nonce = 0
        while not self._stop.is_set():
            raw = signed_transfer(account, nonce)
            tx_hash = self._send(node, raw)
            if tx_hash is None:
                with self._lock:
                    if node in self._down:
                        self.stopped_clients.append(number)
                        return
                    live = [i for i in range(self.cluster.count) if i not in self._down]
                node = live[(live.index(node) + 1) % len(live)] if node in live else live[0]
                self._stop.wait(0.05)
                continue
            with self._lock:
                self.records.append((tx_hash, node, time.monotonic()))
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


class MinedScan:
    """Which transactions each node's chain holds, block by block, each block read once (a
    node's chain only grows; a cached block whose hash the node no longer has is read again)."""

    BATCH_BLOCKS = 100

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._blocks: dict[int, dict[int, tuple[str, list[str]]]] = {}

    def blocks(self, index: int) -> dict[int, tuple[str, list[str]]]:
        """Block number -> (block hash, transaction hashes) of node `index`'s chain."""
        known = self._blocks.setdefault(index, {})
        peer = PeerRpc(self.cluster.devnet.urls[index], 10.0)
        try:
            if known:
                last = max(known)
                block = peer.call("eth_getBlockByNumber", hex(last), False)
                if block is None or block["hash"] != known[last][0]:
                    known.clear()
            head = int(peer.call("eth_blockNumber"), 16)
            first = max(known, default=0) + 1
            for start in range(first, head + 1, self.BATCH_BLOCKS):
                numbers = range(start, min(head, start + self.BATCH_BLOCKS - 1) + 1)
                replies = peer.batch("eth_getBlockByNumber", [[hex(n), False] for n in numbers])
                for number, reply in zip(numbers, replies):
                    block = reply["result"]
                    known[number] = (block["hash"], block["transactions"])
        finally:
            peer.close()
        return known

    def counts(self, index: int) -> collections.Counter:
        """How many times each transaction hash is in node `index`'s chain."""
        return collections.Counter(h for _, txs in self.blocks(index).values() for h in txs)

    def mined(self, index: int) -> set[str]:
        return set(self.counts(index))

    def mined_from(self, index: int, first_block: int) -> set[str]:
        """Transactions of node `index`'s chain in blocks first_block and later."""
        return {h for n, (_, txs) in self.blocks(index).items() if n >= first_block for h in txs}


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
