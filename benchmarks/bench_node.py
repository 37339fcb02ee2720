"""Node benchmark: a real `fee-node run --datadir` under load, against the engine alone.

Eight client threads (each its own deposited account, transfers pre-signed before the
clock starts) send 1-wei transfers over keep-alive HTTP to a `fee-node run` subprocess on
benchmarks/node_genesis.json, one request per transaction (and, as a second row, batches),
for a fixed time, in the default mode (seal when there is work, at most one block a second)
and with --block-time 1. A watcher thread polls the head and records when each block
became visible. Reported per row: accepted and mined tx/s, p50/p99 time from send to the
block being visible, max (block timestamp - wall clock when seen), RSS at start and end.
Then, in the same run, the engine imports the node's own blocks (decode, sender recovery,
execution, write-back, state root) into a fresh chain: node / engine is mined tx/s over
the engine's tx/s.

    python benchmarks/bench_node.py                 # 30 s per row (about 3 min)
    python benchmarks/bench_node.py --seconds 5     # a quick look
"""
import argparse
import http.client
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

import rlp
from eth_keys import keys

from fee_plugin import build_chain, load_genesis
from fee_plugin.artifact import vault_function
from fee_plugin.node.leveldb import LevelDB, MemoryDB
from proc_stats import cpu_ticks, drift_mib_per_min, mapped_files, memory_mib

BENCH_DIR = Path(__file__).resolve().parent
GENESIS = BENCH_DIR / "node_genesis.json"
RESULTS = BENCH_DIR / "results"
CLIENT_KEYS = [keys.PrivateKey(bytes([0x51 + i]) * 32) for i in range(8)]
GWEI = 10**9
RECIPIENT = bytes.fromhex("00000000000000000000000000000000000b0b00")
START_TIMEOUT = 60


class Rpc:
    """One keep-alive HTTP connection (what ethers, Hardhat and requests.Session use)."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=60)

    def call(self, payload) -> object:
        self.conn.request("POST", "/", json.dumps(payload), {"Content-Type": "application/json"})
        return json.loads(self.conn.getresponse().read())

    def one(self, method: str, *params):
        reply = self.call({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]


class RawRpc:
    """The senders' keep-alive connection with the HTTP framing done by hand: http.client's
    request building and header parsing cost the load generator ~2 ms of CPU a request
    under 8 threads, enough to make the clients, not the node, the bottleneck."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.head = f"POST / HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n".encode()
        self.buffer = b""

    def call(self, payload) -> object:
        body = json.dumps(payload).encode()
        self.sock.sendall(self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        while b"\r\n\r\n" not in self.buffer:
            self._read()
        headers, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        length = next(int(line.split(b":", 1)[1]) for line in headers.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while len(self.buffer) < length:
            self._read()
        reply, self.buffer = self.buffer[:length], self.buffer[length:]
        return json.loads(reply)

    def _read(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the node closed the connection")
        self.buffer += chunk


def start_node(genesis: Path, datadir: Path, extra: List[str]):
    args = [sys.executable, "-m", "fee_plugin.node.cli", "run", "--genesis", str(genesis),
            "--datadir", str(datadir), "--port", "0", *extra]
    process = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    line = process.stderr.readline()
    if "listening on" not in line:
        process.kill()
        raise RuntimeError("fee-node did not start: " + line + process.stderr.read())
    threading.Thread(target=lambda: process.stderr.read(), daemon=True).start()
    return process, line.split("listening on ")[1].split()[0]


def sign_transfers(genesis, key, first_nonce: int, count: int) -> List[str]:
    chain = build_chain(genesis)
    builder = chain.get_vm().get_transaction_builder()
    return ["0x" + builder.new_unsigned_dynamic_fee_transaction(
        genesis.chain_id, nonce, GWEI, 2 * GWEI, 21_000, RECIPIENT, 1, b"", ()
    ).as_signed_transaction(key).encode().hex() for nonce in range(first_nonce, first_nonce + count)]


def fund(genesis, url: str) -> None:
    """Each client deposits 100 ETH of fee credit (paid natively: its first deposit)."""
    rpc = Rpc(url)
    chain = build_chain(genesis)
    builder = chain.get_vm().get_transaction_builder()
    hashes = []
    for key in CLIENT_KEYS:
        nonce = int(rpc.one("eth_getTransactionCount", key.public_key.to_checksum_address(), "pending"), 16)
        if nonce:
            continue  # already funded (a datadir reused)
        raw = builder.new_unsigned_dynamic_fee_transaction(
            genesis.chain_id, 0, GWEI, 2 * GWEI, 300_000, genesis.fee.vault, 100 * 10**18,
            vault_function("deposit").selector, ()).as_signed_transaction(key).encode()
        hashes.append(rpc.one("eth_sendRawTransaction", "0x" + raw.hex()))
    deadline = time.monotonic() + START_TIMEOUT
    for tx_hash in hashes:
        while rpc.one("eth_getTransactionReceipt", tx_hash) is None:
            if time.monotonic() > deadline:
                raise RuntimeError("deposits not mined")
            time.sleep(0.05)


class Watcher(threading.Thread):
    """Polls the head; records when each block is first seen and what it holds."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.rpc = Rpc(url)
        self.stop = threading.Event()
        self.blocks: List[dict] = []
        self.latencies: List[float] = []  # eth_blockNumber under load: what other clients feel
        self.next_number = int(self.rpc.one("eth_blockNumber"), 16) + 1

    def run(self) -> None:
        while not self.stop.is_set():
            t0 = time.perf_counter()
            head = int(self.rpc.one("eth_blockNumber"), 16)
            self.latencies.append(time.perf_counter() - t0)
            while self.next_number <= head:
                block = self.rpc.one("eth_getBlockByNumber", hex(self.next_number), False)
                seen = time.time()
                self.blocks.append({"number": self.next_number, "seen": seen,
                                    "timestamp": int(block["timestamp"], 16),
                                    "transactions": block["transactions"]})
                self.next_number += 1
            self.stop.wait(0.02)


def run_row(genesis, genesis_path: Path, datadir: Path, mode: str, batch: int, seconds: float,
            clients: int, builder: str = "thread") -> dict:
    extra = (["--block-time", "1"] if mode == "block-time-1" else []) + ["--builder", builder]
    process, url = start_node(genesis_path, datadir, extra)
    try:
        fund(genesis, url)
        rpc = Rpc(url)
        keys_ = CLIENT_KEYS[:clients]
        # per client: ~1.7x the fastest row measured (batched, ~115/s a client) for 30 s rows,
        # ~1.6x the 10-minute run's ~75/s; `clients_out_of_transactions` says if it was short
        budget = int(seconds * (200 if seconds <= 60 else 120)) + 200
        raws = {}
        for key in keys_:
            nonce = int(rpc.one("eth_getTransactionCount", key.public_key.to_checksum_address(), "pending"), 16)
            raws[key] = sign_transfers(genesis, key, nonce, budget)
        memory_start = memory_mib(process.pid)
        watcher = Watcher(url)
        sent: Dict[str, float] = {}
        counts = {"accepted": 0, "refused": 0, "ran_out": 0}
        lock = threading.Lock()
        stop = threading.Event()

        def client(key):
            conn = RawRpc(url)
            queue = raws[key]
            i = 0
            gap_until = -1  # a refused transaction with later ones accepted: resend it even after stop
            while i < len(queue) and (not stop.is_set() or i <= gap_until):
                chunk = queue[i:i + batch]
                t0 = time.time()
                payload = [{"jsonrpc": "2.0", "id": n, "method": "eth_sendRawTransaction", "params": [raw]}
                           for n, raw in enumerate(chunk)]
                replies = conn.call(payload if batch > 1 else payload[0])
                replies = replies if isinstance(replies, list) else [replies]
                replies.sort(key=lambda r: r["id"])
                # "already known" / "nonce too low": sent before (queued behind a refusal,
                # or mined since); the first other refusal is where to resume
                first_bad = next((n for n, r in enumerate(replies) if "error" in r
                                  and not r["error"]["message"].startswith(("already known", "nonce too low"))),
                                 len(replies))
                ok = [r["result"] for r in replies if "result" in r]
                with lock:
                    for tx_hash in ok:
                        sent.setdefault(tx_hash, t0)
                    counts["accepted"] += len(ok)
                    counts["refused"] += int(first_bad < len(replies))
                if first_bad < len(replies) and any("result" in r for r in replies[first_bad:]):
                    gap_until = max(gap_until, i + first_bad)
                i += first_bad
                if first_bad < len(replies):
                    time.sleep(0.05)  # a pool limit: back off briefly, then resend from there
            if not stop.is_set():
                with lock:
                    counts["ran_out"] += 1  # the row would under-measure: raise the budget

        threads = [threading.Thread(target=client, args=(key,)) for key in keys_]
        watcher.start()
        started = time.time()
        steal_start = cpu_ticks()
        for t in threads:
            t.start()
        rss_samples = []
        while not stop.wait(min(10.0, seconds)):
            rss_samples.append(memory_mib(process.pid))
            if time.time() - started >= seconds:
                break
        stop.set()
        for t in threads:
            t.join(60)
        ended = time.time()
        steal_end = cpu_ticks()
        drain = time.time() + 30
        while time.time() < drain and not all(h in _mined(watcher) for h in list(sent)[-clients:]):
            time.sleep(0.1)
        watcher.stop.set()
        watcher.join(10)
        memory_end = memory_mib(process.pid)
        mapped_tables = mapped_files(process.pid)
    finally:
        process.terminate()
        process.wait(60)
    in_window = [b for b in watcher.blocks if started <= b["seen"] <= ended]
    mined_in_window = sum(len([h for h in b["transactions"] if h in sent]) for b in in_window)
    latencies = []
    for block in watcher.blocks:
        for tx_hash in block["transactions"]:
            if tx_hash in sent:
                latencies.append(block["seen"] - sent[tx_hash])
    ahead = [b["timestamp"] - b["seen"] for b in watcher.blocks]
    duration = ended - started
    return {
        "mode": mode, "batch": batch, "builder": builder, "clients": clients, "seconds": round(duration, 2),
        "accepted_tx_per_s": round(counts["accepted"] / duration, 1),
        "refused": counts["refused"],
        "clients_out_of_transactions": counts["ran_out"],
        "mined_tx_per_s": round(mined_in_window / duration, 1),
        "blocks": len(in_window),
        "receipt_p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "receipt_p99_s": round(sorted(latencies)[int(len(latencies) * 0.99)], 3) if latencies else None,
        "max_block_ahead_of_wall_s": round(max(ahead), 3) if ahead else None,
        "rss_start_mib": memory_start["rss"], "rss_end_mib": memory_end["rss"],
        "leveldb_tables_mapped_at_end": mapped_tables,
        "rss_anon_start_mib": memory_start["anon"], "rss_anon_end_mib": memory_end["anon"],
        "rss_every_10s_mib": rss_samples,
        "drift_last_5_min_mib_per_min": {key: drift_mib_per_min(rss_samples, key) for key in ("rss", "anon", "file")},
        "cpu_steal_percent": round(100 * (steal_end[0] - steal_start[0]) / max(1, steal_end[1] - steal_start[1]), 1),
        "rpc_latency_under_load_ms": _latency_summary(watcher.latencies),
        "unmined_after_drain": len(set(sent) - _mined(watcher)),
    }


def _latency_summary(latencies: List[float]) -> dict:
    if not latencies:
        return {}
    ordered = sorted(latencies)
    return {"p50": round(ordered[len(ordered) // 2] * 1000, 2),
            "p99": round(ordered[int(len(ordered) * 0.99)] * 1000, 2),
            "max": round(ordered[-1] * 1000, 2)}


def _mined(watcher: Watcher) -> set:
    return {h for b in watcher.blocks for h in b["transactions"]}


def engine_rate(genesis, datadir: Path) -> dict:
    """Import the node's own blocks into a fresh chain (write-back), timed per block."""
    source = LevelDB(str(datadir / "chain"))
    try:
        chain = build_chain(genesis, source)
        head = chain.get_canonical_head().block_number
        encoded = [rlp.encode(chain.get_canonical_block_by_number(n)) for n in range(1, head + 1)]
        block_class = type(chain.get_canonical_block_by_number(1))
    finally:
        source.close()
    importer = build_chain(genesis, MemoryDB(), write_back=True)
    seconds = 0.0
    txs = 0
    for raw in encoded:
        start = time.perf_counter()
        block = rlp.decode(raw, sedes=block_class)
        importer.import_block(block)
        seconds += time.perf_counter() - start
        txs += len(block.transactions)
    return {"blocks": len(encoded), "transactions": txs, "seconds": round(seconds, 3),
            "tx_per_s": round(txs / seconds, 1) if seconds else None}


# Each mode and batch size with the builder in a thread of the node and in its own process,
# side by side in one run.
DEFAULT_ROWS = [(mode, batch, builder) for mode in ("automine", "block-time-1") for batch in (1, 20)
                for builder in ("thread", "process")]


def run(seconds: float = 30.0, clients: int = 8, rows=None, out: Optional[Path] = RESULTS) -> dict:
    genesis = load_genesis(GENESIS)
    rows = rows or DEFAULT_ROWS
    results = {"command": " ".join(["python", "benchmarks/bench_node.py", "--seconds", f"{seconds:g}"]),
               "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        for n, (mode, batch, builder) in enumerate(rows):
            datadir = Path(tmp) / f"row{n}"
            row = run_row(genesis, GENESIS, datadir, mode, batch, seconds, clients, builder)
            row["engine"] = engine_rate(genesis, datadir)
            rate = row["engine"]["tx_per_s"]
            row["node_over_engine"] = round(row["mined_tx_per_s"] / rate, 3) if rate else None
            results["rows"].append(row)
            print(json.dumps(row), file=sys.stderr)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "node.json").write_text(json.dumps(results, indent=2) + "\n")
        (out / "node.md").write_text(render(results))
    return results


def render(results: dict) -> str:
    lines = ["# Node benchmark", "", f"Command: `{results['command']}` ({results['started_utc']})", "",
             "| mode | batch | builder | accepted tx/s | mined tx/s | engine tx/s | node/engine | p50 / p99 to block (s) "
             "| max block ahead of wall (s) | RSS start → end (MiB; anonymous) | refused | eth_blockNumber p50 / p99 under load (ms) "
             "| CPU steal % |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["rows"]:
        lines.append(f"| {r['mode']} | {r['batch']} | {r.get('builder', 'thread')} | {r['accepted_tx_per_s']} | {r['mined_tx_per_s']} | "
                     f"{r['engine']['tx_per_s']} | {r['node_over_engine']} | {r['receipt_p50_s']} / "
                     f"{r['receipt_p99_s']} | {r['max_block_ahead_of_wall_s']} | {r['rss_start_mib']} → "
                     f"{r['rss_end_mib']} ({r.get('rss_anon_start_mib', '—')} → {r.get('rss_anon_end_mib', '—')}) | {r['refused']} | {r['rpc_latency_under_load_ms'].get('p50')} / "
                     f"{r['rpc_latency_under_load_ms'].get('p99')} | {r.get('cpu_steal_percent', '—')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--rss-run", type=float, metavar="SECONDS",
                        help="one long default-mode row sampling RSS every 10 s (written to node_rss.json)")
    parser.add_argument("--builder", choices=["process", "thread"], default="process",
                        help="the --rss-run row's builder")
    args = parser.parse_args()
    if args.rss_run:
        genesis = load_genesis(GENESIS)
        with tempfile.TemporaryDirectory() as tmp:
            row = run_row(genesis, GENESIS, Path(tmp) / "rss", "automine", 1, args.rss_run, args.clients,
                          args.builder)
        row["command"] = f"python benchmarks/bench_node.py --rss-run {args.rss_run:g} --builder {args.builder}"
        (args.out / "node_rss.json").write_text(json.dumps(row, indent=2) + "\n")
        print(json.dumps(row, indent=2))
    else:
        print(render(run(args.seconds, args.clients, out=args.out)))
