"""The cluster's etcd layer alone, on a real 3-member loopback cluster (issue 13).

Measures, with no fee node involved:
- fenced append latency (one txn: head and fence compares, block and head puts), p50/p99,
  sequential, per block size; and the delay until a watcher connected to another member
  holds the block;
- producer failover: a candidate process elected, then kill -9; time until the in-process
  successor holds the fence (the lease TTL bounds it), median and max over the kills;
- etcd leader failover: appends in a loop, kill -9 of etcd's Raft leader member; the longest
  gap between two commits, over several kills (the member is restarted between them).

    python benchmarks/bench_cluster_etcd.py [--appends 500] [--kills 10] [--etcd-kills 5]
                                            [--out benchmarks/results/cluster_etcd.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fee_plugin.node.cluster import BlockLog, ChainKeys, Election, EtcdClient, Session
from fee_plugin.node.cluster.devnet import start_devnet
from tests.support.blocks import make_block, make_chain
from tests.support.etcd import leader_member


def percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]
    return {"n": len(ordered), "p50_ms": round(pick(0.5) * 1e3, 2),
            "p99_ms": round(pick(0.99) * 1e3, 2), "max_ms": round(ordered[-1] * 1e3, 2)}


def elect(urls: list[str], keys: ChainKeys, node_id: str) -> tuple[Session, Election]:
    session = Session(EtcdClient(urls)).start()
    election = Election(session, keys.election, node_id, f"http://{node_id}:8545").start()
    return session, election


def bench_appends(urls: list[str], appends: int, payload_bytes: int, chain_id: int) -> dict:
    keys = ChainKeys(chain_id, chain_id.to_bytes(32, "big"))
    session, election = elect(urls, keys, "bench")
    assert election.wait_until_leader(5)
    log = BlockLog(EtcdClient(urls), keys)
    watch = BlockLog(EtcdClient(urls[1:] + urls[:1]), keys).watch(1)
    seen: dict[int, float] = {}

    def read():
        for block in watch:
            seen[block.number] = time.perf_counter()
            if block.number == appends:
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    blocks, parent = [], keys.genesis_hash
    for number in range(1, appends + 1):
        data, block_hash = make_block(number, parent, payload=os.urandom(payload_bytes))
        blocks.append((number, parent, block_hash, data))
        parent = block_hash
    latencies, committed_at = [], {}
    for number, parent, block_hash, data in blocks:
        started = time.perf_counter()
        result = log.append(number, parent, block_hash, data, election.fence)
        committed_at[number] = time.perf_counter()
        latencies.append(committed_at[number] - started)
        assert result.committed, result
    reader.join(30)
    watch.close()
    delays = [max(0.0, seen[n] - committed_at[n]) for n in committed_at if n in seen]
    election.close()
    session.close()
    return {"block_bytes": len(blocks[0][3]), "append": percentiles(latencies),
            "watch_delivery_after_commit": percentiles(delays),
            "appends_per_second": round(appends / sum(latencies), 1)}


def bench_producer_failover(urls: list[str], kills: int, chain_id: int) -> dict:
    keys = ChainKeys(chain_id, chain_id.to_bytes(32, "big"))
    elected_seconds = []
    for _ in range(kills):
        candidate = subprocess.Popen(
            [sys.executable, "-m", "tests.support.candidate", ",".join(urls), str(chain_id),
             keys.genesis_hash.hex(), "victim"],
            cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            line = json.loads(candidate.stdout.readline())
            assert line["event"] == "leader", line
            session, successor = elect(urls, keys, "successor")
            assert successor.wait_for(lambda e: e.leader_id == "victim", 5)
            os.kill(candidate.pid, signal.SIGKILL)
            killed = time.monotonic()
            assert successor.wait_until_leader(10)
            elected_seconds.append(time.monotonic() - killed)
            successor.close()
            session.close()
        finally:
            if candidate.poll() is None:
                candidate.kill()
            candidate.wait(10)
    return {"kills": kills, "lease_ttl_seconds": 2,
            "new_producer_seconds": {"median": round(statistics.median(elected_seconds), 3),
                                     "max": round(max(elected_seconds), 3),
                                     "all": [round(s, 3) for s in elected_seconds]}}


def bench_etcd_leader_failover(devnet, kills: int, chain_id: int) -> dict:
    keys = ChainKeys(chain_id, chain_id.to_bytes(32, "big"))
    urls = devnet.client_urls
    session, election = elect(urls, keys, "bench")
    assert election.wait_until_leader(5)
    log = BlockLog(EtcdClient(urls, timeout_seconds=10), keys)
    chain = iter(make_chain(keys.genesis_hash, 1_000))
    resumed_seconds = []
    for _ in range(kills):
        for _ in range(20):  # steady state before the kill
            assert log.append(*next(chain), election.fence).committed
        leader = leader_member(devnet)
        devnet.stop_member(leader, signal.SIGKILL)
        killed = time.monotonic()
        assert election.wait_until_leader(10)
        assert log.append(*next(chain), election.fence).committed
        resumed_seconds.append(time.monotonic() - killed)
        devnet.start_member(leader)
        devnet.wait_healthy(30)
    election.close()
    session.close()
    return {"kills": kills, "first_commit_after_kill_seconds": {
        "median": round(statistics.median(resumed_seconds), 3),
        "max": round(max(resumed_seconds), 3), "all": [round(s, 3) for s in resumed_seconds]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--appends", type=int, default=500)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--etcd-kills", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        devnet = start_devnet(directory, 3)
        try:
            urls = devnet.client_urls
            results = {
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                            "etcd": subprocess.run(["etcd", "--version"], capture_output=True,
                                                   text=True, check=True).stdout.split("\n")[0]},
                "appends": [bench_appends(urls, args.appends, size, 1 + i)
                            for i, size in enumerate((1_000, 16_000, 256_000))],
                "producer_failover": bench_producer_failover(urls, args.kills, 10),
                "etcd_leader_failover": bench_etcd_leader_failover(devnet, args.etcd_kills, 11),
            }
        finally:
            devnet.stop(signal.SIGKILL)
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
