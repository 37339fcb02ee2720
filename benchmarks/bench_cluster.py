"""Cluster benchmark (issue 13): three fee nodes on etcd vs one node, failover, resync.

1. Throughput, one run: the same load (8 clients, 1-wei lot-paid transfers, one request per
   transaction, pre-signed) for the same time against `fee-node run --datadir` alone, then
   against a 3-node cluster (3 etcd members, 3 `fee-node run --etcd`; client i sends to node
   i mod 3). Mined tx/s as blocks become visible at the producer; follower lag in blocks
   (etcd head - follower head) sampled every 0.1 s; CPU seconds per mined transaction of
   every process (from /proc), which feed the model below.
2. Failover: kill -9 of the producer, --kills times, a light load on the survivors: seconds
   until another node is elected and until etcd's head moves past where it was then (the new
   producer's first block); the killed node is restarted and the cluster converges between kills.
3. Resync: a chain of --resync-blocks blocks (10 transfers each, built beforehand, committed to
   etcd through a fence): a new node applies them all from etcd; then etcd keeps the last
   10 % and another new node takes the rest from the first node (peer) and etcd.

    python benchmarks/bench_cluster.py                # ~6 min; results/cluster.{json,md}
    python benchmarks/bench_cluster.py --seconds 5 --kills 2 --resync-blocks 100 --out /tmp/b
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_node as bn  # noqa: E402
from bench_cluster_model import model, render  # noqa: E402

import rlp  # noqa: E402

from fee_plugin import load_genesis  # noqa: E402
from fee_plugin.artifact import vault_function  # noqa: E402
from fee_plugin.chain import genesis_header  # noqa: E402
from fee_plugin.node import ManualClock, Node  # noqa: E402
from fee_plugin.node.cluster import (  # noqa: E402
    BlockLog,
    ChainKeys,
    Election,
    EtcdClient,
    Session,
    block_identity,
)
from fee_plugin.node.cluster.devnet_nodes import FeeDevnet  # noqa: E402
from tests.support.cluster import Cluster, measure_failover  # noqa: E402
from tests.support.etcd import wait_until  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
CLIENTS = 8
TXS_PER_BLOCK = 10


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Lag(threading.Thread):
    """Samples etcd's head minus each follower's head every 0.1 s."""

    def __init__(self, blocks: BlockLog, followers: list[str]) -> None:
        super().__init__(daemon=True)
        self.blocks = blocks
        self.rpcs = [bn.Rpc(url) for url in followers]
        self.samples: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.1):
            head = self.blocks.head().number
            for rpc in self.rpcs:
                self.samples.append(head - int(rpc.one("eth_blockNumber"), 16))


def load(urls: list[str], genesis, seconds: float, pids: dict[str, int]) -> dict:
    """8 clients for `seconds`; client i sends to urls[i % len(urls)]. Mined tx/s at urls[0]."""
    keys = bn.CLIENT_KEYS[:CLIENTS]
    raws = {}
    for key in keys:
        rpc = bn.Rpc(urls[0])
        nonce = int(rpc.one("eth_getTransactionCount", key.public_key.to_checksum_address(), "pending"), 16)
        raws[key] = bn.sign_transfers(genesis, key, nonce, int(seconds * 400) + 200)
    watcher = bn.Watcher(urls[0])
    sent: dict[str, float] = {}
    lock, stop = threading.Lock(), threading.Event()
    refused = [0]

    def client(n, key):
        rpc, queue, i = bn.Rpc(urls[n % len(urls)]), raws[key], 0
        while not stop.is_set() and i < len(queue):
            t0 = time.time()
            reply = rpc.call({"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction",
                              "params": [queue[i]]})
            if "result" in reply:
                with lock:
                    sent.setdefault(reply["result"], t0)
                i += 1
            else:
                refused[0] += 1
                stop.wait(0.05)

    threads = [threading.Thread(target=client, args=(n, k)) for n, k in enumerate(keys)]
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    bench_cpu = time.process_time()
    watcher.start()
    started = time.time()
    for thread in threads:
        thread.start()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join(60)
    ended = time.time()
    cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
    cpu["clients"] = time.process_time() - bench_cpu
    deadline = time.time() + 60
    while time.time() < deadline and not set(sent) <= {h for b in watcher.blocks for h in b["transactions"]}:
        time.sleep(0.1)
    watcher.stop.set()
    watcher.join(10)
    in_window = [b for b in watcher.blocks if started <= b["seen"] <= ended]
    mined = sum(len([h for h in b["transactions"] if h in sent]) for b in in_window)
    duration = ended - started
    return {"seconds": round(duration, 2), "accepted_tx_per_s": round(len(sent) / duration, 1),
            "mined_tx_per_s": round(mined / duration, 1), "blocks": len(in_window),
            "txs_per_block": round(mined / max(1, len(in_window)), 1), "refused": refused[0],
            "cores_busy": round(sum(cpu.values()) / duration, 2),
            "cpu_seconds_per_mined_tx_ms": {name: round(1e3 * s / max(1, mined), 3)
                                            for name, s in cpu.items()}}


def bench_throughput(tmp: Path, seconds: float) -> dict:
    genesis = load_genesis(bn.GENESIS)
    process, url = bn.start_node(bn.GENESIS, tmp / "single", [])
    try:
        bn.fund(genesis, url)
        single = load([url], genesis, seconds, {"node": process.pid})
    finally:
        process.terminate()
        process.wait(60)
    cluster = Cluster(tmp / "cluster", bn.GENESIS).start()
    try:
        producer = cluster.producer()
        order = [producer] + [i for i in range(3) if i != producer]
        urls = [cluster.devnet.urls[i] for i in order]
        bn.fund(genesis, urls[0])
        cluster.wait_converged(30)
        pids = {"producer": cluster.devnet.pid(order[0]), "follower_a": cluster.devnet.pid(order[1]),
                "follower_b": cluster.devnet.pid(order[2])}
        pids.update({f"etcd_{name}": pid for name, pid in cluster.devnet.etcd.pids.items()})
        lag = Lag(cluster.block_log(), urls[1:])
        lag.start()
        result = load(urls, genesis, seconds, pids)
        lag.stop.set()
        lag.join(5)
        result["follower_lag_blocks"] = {"max": max(lag.samples), "p50": statistics.median(lag.samples),
                                         "samples": len(lag.samples)}
        result["etcd_keep_blocks"] = cluster.status(order[0])["etcdKeepBlocks"]
    finally:
        cluster.stop()
    return {"single": single, "cluster": result,
            "cluster_over_single": round(result["mined_tx_per_s"] / single["mined_tx_per_s"], 3)}


def bench_failover(tmp: Path, kills: int) -> dict:
    cluster = Cluster(tmp / "failover", bn.GENESIS).start()
    genesis = load_genesis(bn.GENESIS)
    samples = []
    try:
        bn.fund(genesis, cluster.devnet.urls[cluster.producer()])
        for _ in range(kills):
            victim = cluster.producer()
            survivor = cluster.devnet.urls[(victim + 1) % 3]
            trickle = threading.Event()
            key = bn.CLIENT_KEYS[len(samples) % CLIENTS]
            threading.Thread(target=_trickle, args=(survivor, genesis, key, trickle), daemon=True).start()
            time.sleep(0.5)
            cluster.devnet.kill_node(victim)
            samples.append(measure_failover(cluster, victim))
            trickle.set()
            cluster.devnet.start_node(victim)
            cluster.wait_converged(60)
    finally:
        cluster.stop()

    def summary(field):
        values = [s[field] for s in samples]
        return {"median": round(statistics.median(values), 3), "max": round(max(values), 3),
                "all": [round(v, 3) for v in values]}

    return {"kills": kills, "lease_ttl_seconds": 2, "elected_seconds": summary("elected_seconds"),
            "first_block_seconds": summary("first_block_seconds")}


def _trickle(url: str, genesis, key, stop: threading.Event) -> None:
    """A few transactions a second to one node while a producer is killed."""
    rpc = bn.Rpc(url)
    nonce = int(rpc.one("eth_getTransactionCount", key.public_key.to_checksum_address(), "pending"), 16)
    for raw in bn.sign_transfers(genesis, key, nonce, 200):
        if stop.wait(0.2):
            return
        try:
            rpc.call({"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction", "params": [raw]})
        except OSError:
            return


def _signed(genesis, builder, key, nonce: int, to: bytes, value: int, data: bytes = b"",
            gas: int = 21_000) -> bytes:
    return builder.new_unsigned_dynamic_fee_transaction(
        genesis.chain_id, nonce, bn.GWEI, 2 * bn.GWEI, gas, to, value, data, ()
    ).as_signed_transaction(key).encode()


def built_chain(genesis, blocks: int, txs_per_block: int = TXS_PER_BLOCK) -> list[bytes]:
    """`blocks` blocks built beforehand: the clients' deposits, then transfers (timestamps
    one second apart from the genesis on, so all in the past)."""
    clock = ManualClock(genesis.timestamp + 1)
    node = Node(genesis, clock=clock)
    builder = node.chain.get_vm().get_transaction_builder()
    keys = bn.CLIENT_KEYS[:CLIENTS]
    deposit = vault_function("deposit").selector
    for key in keys:
        node.submit(_signed(genesis, builder, key, 0, genesis.fee.vault, 100 * 10**18, deposit,
                            300_000))
    nonces = dict.fromkeys(keys, 1)
    encoded = []
    for number in range(1, blocks + 1):
        for n in range(txs_per_block if number > 1 else 0):
            key = keys[n % len(keys)]
            node.submit(_signed(genesis, builder, key, nonces[key], bn.RECIPIENT, 1))
            nonces[key] += 1
        clock.advance(1)
        block = node.produce(force_empty=True)
        assert block is not None and len(block.transactions) == (txs_per_block if number > 1 else len(keys))
        encoded.append(rlp.encode(block))
    return encoded


def seed_etcd(urls: list[str], keys: ChainKeys, chain: list[bytes]) -> None:
    """Commit `chain` to etcd as a producer would (fenced appends), then resign."""
    session = Session(EtcdClient(urls)).start()
    election = Election(session, keys.election, "seeder", "http://127.0.0.1:1").start()
    try:
        assert election.wait_until_leader(10)
        log = BlockLog(EtcdClient(urls), keys)
        for data in chain:
            assert log.append(*block_identity(data), data, election.fence).committed
    finally:
        election.close()
        session.close()


def _synced(devnet: FeeDevnet, index: int, head: int) -> dict:
    """Start a new node; how long until it holds block `head`."""
    spawned = time.monotonic()
    devnet.spawn_node(index)
    devnet.wait_listening(index)
    listening = time.monotonic()
    rpc = bn.Rpc(devnet.urls[index])
    wait_until(lambda: int(rpc.one("eth_blockNumber"), 16) >= head, 600, f"block {head}", 0.05)
    done = time.monotonic()
    return {"seconds_from_process_start": round(done - spawned, 2),
            "seconds_from_listening": round(done - listening, 2),
            "blocks_per_second": round(head / (done - listening), 1)}


def bench_resync(tmp: Path, blocks: int) -> dict:
    genesis = load_genesis(bn.GENESIS)
    chain = built_chain(genesis, blocks)
    keys = ChainKeys(genesis.chain_id, genesis_header(genesis).hash)
    devnet = FeeDevnet.open(tmp / "resync", 3, bn.GENESIS, ["--etcd-keep", "0"])
    try:
        seed_etcd(devnet.etcd.client_urls, keys, chain)
        from_etcd = _synced(devnet, 0, blocks)
        kept = max(1, blocks // 10)
        BlockLog(EtcdClient(devnet.etcd.client_urls), keys).keep(kept)
        from_peer = _synced(devnet, 1, blocks)
        from_peer["from_peer_blocks"] = blocks - kept
    finally:
        devnet.stop()
    return {"blocks": blocks, "transactions": CLIENTS + (blocks - 1) * TXS_PER_BLOCK,
            "from_etcd": from_etcd, "from_peer_then_etcd": from_peer}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--resync-blocks", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=bn.RESULTS)
    args = parser.parse_args()
    print(json.dumps(run(args.seconds, args.kills, args.resync_blocks, args.out), indent=2))


def run(seconds: float, kills: int, resync_blocks: int, out: Path | None) -> dict:
    results = {"command": f"python benchmarks/bench_cluster.py --seconds {seconds:g} --kills {kills} "
                          f"--resync-blocks {resync_blocks}",
               "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        results["throughput"] = bench_throughput(Path(tmp), seconds)
        results["model"] = model(results["throughput"], results["cpus"])
        results["failover"] = bench_failover(Path(tmp), kills)
        results["resync"] = bench_resync(Path(tmp), resync_blocks)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "cluster.json").write_text(json.dumps(results, indent=2) + "\n")
        (out / "cluster.md").write_text(render(results))
    return results


if __name__ == "__main__":
    main()
