"""Run the whole benchmark suite (issues 5 and 14: items 1-6) and write the results.

    python benchmarks/run_all.py            # full run (~6-8 min on a 2-core machine)
    python benchmarks/run_all.py --quick    # fast check (~1.5 min), prints, writes nothing
    python benchmarks/run_all.py --only overhead inevm --rounds 5 --out /tmp/bench

The full run writes benchmarks/results/results.json and benchmarks/results/results.md.
Every figure is a ratio of two sides measured side by side in this process (see
benchmarks/README.md); absolute rates appear in the JSON as context only.
"""
import argparse
import datetime
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_attribution  # noqa: E402
import bench_hook  # noqa: E402
import bench_import  # noqa: E402
import bench_inevm  # noqa: E402
import bench_node  # noqa: E402
import bench_overhead  # noqa: E402
import bench_scale  # noqa: E402
from bench_common import RESULTS, machine  # noqa: E402

BENCHMARKS = ("overhead", "hook", "inevm", "scale", "import", "attribution", "node")

MODES = {
    "full": {  # at least 9 rounds for every target figure (issue 14)
        "overhead": dict(rounds=9, senders=500, repeat=(100, 5), distinct=500, mix=(100, 5)),
        "hook": dict(rounds=7, senders=500, repeat=(100, 5), distinct=500, mix=(100, 5)),
        "inevm": dict(rounds=7, senders=100, per_sender=5),
        "scale": dict(rounds=9, counts=(100, 1000, 10000, 100000), lot_counts=(1, 8, 32, 64)),
        "import": dict(rounds=9, shapes={100: (100, 1), 1000: (200, 5)}),
        "attribution": dict(rounds=7, senders=500, repeat=(100, 5), distinct=500, lot_counts=(1, 64)),
        "node": dict(seconds=30.0, clients=8),  # also writes results/node.{json,md}
    },
    "quick": {
        "overhead": dict(rounds=3, senders=500, repeat=(100, 5), distinct=500, mix=(100, 5)),
        "hook": dict(rounds=3, senders=100, repeat=(100, 5), distinct=100, mix=(100, 5)),
        "inevm": dict(rounds=3, senders=100, per_sender=5),
        "scale": dict(rounds=3, counts=(100, 1000, 10000), lot_counts=(1, 8, 64)),
        "import": dict(rounds=3, shapes={100: (100, 1), 1000: (200, 5)}),
        "attribution": dict(rounds=3, senders=500, repeat=(100, 5), distinct=500, lot_counts=(1, 64)),
        "node": dict(seconds=5.0, clients=8, out=None),
    },
    # tests/test_benchmarks_smoke.py: every code path, tiny N, a few seconds
    "smoke": {
        "overhead": dict(rounds=1, senders=6, repeat=(3, 2), distinct=6, mix=(2, 5)),
        "hook": dict(rounds=1, senders=6, repeat=(3, 2), distinct=6, mix=(2, 5)),
        "inevm": dict(rounds=1, senders=3, per_sender=2, lots_per_sender=2),
        "scale": dict(rounds=1, counts=(4, 20), lot_counts=(1, 3), senders=4),
        "import": dict(rounds=1, shapes={4: (2, 2)}),
        "attribution": dict(rounds=1, senders=6, repeat=(3, 2), distinct=6, lot_counts=(1, 3),
                            lot_senders=4),
        "node": dict(seconds=1.0, clients=2, rows=[("automine", 1, "process")], out=None),  # own smoke test
    },
}

RUNNERS = {
    "overhead": bench_overhead.run,
    "hook": bench_hook.run,
    "inevm": bench_inevm.run,
    "scale": bench_scale.run,
    "import": bench_import.run,
    "attribution": bench_attribution.run,
    "node": bench_node.run,
}

TARGETS = {  # issue 14 (write-back design, median ratios, state root included); inevm: issue 5
    "transfers_repeat": 1.30,
    "transfers_distinct": 1.60,
    "mix": 1.05,
    "import_1000": 1.15,
    "over_floor": 1.05,  # plugin / floor, the two transfer workloads
    "inevm_over_native": 10.0,
    "lots_growth": 1.10,
    "accounts_growth": 1.05,  # ratio growth vs the smallest N; 1.0 = plain's own growth (+5 % noise)
}


def run_suite(mode="full", only=BENCHMARKS, rounds=None, log=sys.stderr):
    params = MODES[mode]
    results = {"mode": mode, "started_utc": datetime.datetime.now(datetime.timezone.utc)
               .strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(), "benchmarks": {}}
    suite_start = time.perf_counter()
    for name in only:
        kwargs = dict(params[name])
        if rounds is not None and "rounds" in kwargs:
            kwargs["rounds"] = rounds
        start = time.perf_counter()
        print(f"[bench] {name} {kwargs} ...", file=log, flush=True)
        results["benchmarks"][name] = RUNNERS[name](**kwargs)
        print(f"[bench] {name} done in {time.perf_counter() - start:.0f} s", file=log, flush=True)
        results["benchmarks"][name]["parameters"] = {k: _jsonable(v) for k, v in kwargs.items()}
    results["suite_seconds"] = round(time.perf_counter() - suite_start)
    return results


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value


def _r(s, unit="×"):
    return f"**{s['median']:.2f}{unit}** ({s['min']:.2f}–{s['max']:.2f})"


def _pct(s):
    return f"**{100 * s['median']:.1f} %** ({100 * s['min']:.1f}–{100 * s['max']:.1f})"


def _met(ok):
    return "yes" if ok else "**no**"


def render_markdown(results, command="python benchmarks/run_all.py"):
    b = results["benchmarks"]
    m = results["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"`{command}` — mode `{results['mode']}`, started {results['started_utc']} UTC, "
        f"suite {results['suite_seconds']} s.",
        "",
        "Every figure is a ratio of two sides measured side by side in the same process and "
        "the same round (median over rounds, min–max in parentheses); rounds alternate which "
        "side runs first, after one discarded warm-up round. State root included "
        "(`vm.state.persist()`). Two designs of the hook are measured against plain py-evm: "
        "*per-tx* stores every charge at once (the default and the oracle); *write-back* "
        "keeps a block's charges in a journaled cache and stores them once "
        "(`build_chain(..., write_back=True)`, fee_plugin/writeback.py).",
        "",
        f"Machine: {m['cpu']}, {m['cpus']} CPUs, Python {m['python']}, {m['platform']}; "
        f"load average at start {m['load_average_at_start']} (other work was running); "
        f"keccak backend {m['eth_hash_backend']}; commit {m['git_commit']}.",
        "Packages: " + ", ".join(f"{k} {v}" for k, v in m["packages"].items()) + ".",
        "",
    ]
    header, lines = lines, []
    targets = []
    if "overhead" in b:
        cases = list(b["overhead"]["cases"].items())
        lines += ["## 1. Overhead: plugin / plain per transaction", "",
                  "*floor* = plain py-evm plus, per payer per block, a read and a write of the "
                  "account's head0 and of the drawn lot word in the vault's storage (the work a "
                  "recorded charge cannot avoid; benchmarks/floor.py); *one-word floor*: head0 "
                  "only (no per-lot `used` in storage).", "",
                  "| workload | txs | per-tx / plain | write-back / plain | floor / plain | "
                  "write-back / floor | one-word floor / plain |", "|---|---|---|---|---|---|---|"]
        for name, case in cases:
            lines.append(f"| {name} | {case['transactions']} | {_r(case['ratio'])} | "
                         f"{_r(case['write_back_ratio'])} | {_r(case['floor_ratio'])} | "
                         f"{_r(case['write_back_over_floor'])} | {_r(case['one_word_floor_ratio'])} |")
        lines.append("")
        for (_, case), key, label in zip(cases, ("transfers_repeat", "transfers_distinct", "mix"),
                                         ("transfers, payers repeating (100 × 5)",
                                          "transfers, 500 distinct payers", "mix"), strict=True):
            targets.append((f"write-back / plain, {label}", f"≤ {TARGETS[key]:.2f}×",
                            _r(case["write_back_ratio"]), case["write_back_ratio"]["median"] <= TARGETS[key]))
            if key != "mix":
                targets.append((f"write-back / floor, {label}", f"≤ {TARGETS['over_floor']:.2f}×",
                                _r(case["write_back_over_floor"]),
                                case["write_back_over_floor"]["median"] <= TARGETS["over_floor"]))
    if "hook" in b:
        lines += ["## 2. The hook alone (fractions of the whole plugin transaction)", "",
                  "hook = the plugin's validation + its charge (`finalize_computation`) + the "
                  "receipt cost of its fee logs; *net* subtracts the stock validation and "
                  "finalization it replaces. Measured with timers on both sides (a few % of "
                  "timer overhead).", "",
                  "| workload | hook / whole tx | net of stock code | validation | fee-account read "
                  "+ check | charge | of which lot charge + logs | fee logs in receipt | extra "
                  "state-root work | EVM execution |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for name, c in b["hook"]["cases"].items():
            lines.append(
                f"| {name} | {_pct(c['hook_fraction'])} | {_pct(c['net_hook_fraction'])} | "
                f"{_pct(c['validation_fraction'])} | "
                f"{_pct(c['fee_account_read_and_check_fraction'])} | {_pct(c['charge_fraction'])} | "
                f"{_pct(c['lot_charge_pieces_fraction'])} | {_pct(c['fee_logs_receipt_fraction'])} | "
                f"{_pct(c['state_root_extra_fraction'])} | {_pct(c['evm_fraction'])} |")
        lines.append("")
    if "inevm" in b:
        e = b["inevm"]
        lines += ["## 3. In-EVM alternative (PaymasterVault.charge as a system call) vs native", "",
                  f"{e['transactions']} value transfers, {e['lots_per_sender']} lot(s) per sender; "
                  "both variants leave identical vault words, balances and logs (checked).", "",
                  "| measure | in-EVM / native |", "|---|---|",
                  f"| charge step (`finalize_computation`, same common part on both sides) | "
                  f"{_r(e['ratio_finalize_inevm_over_native'])} |",
                  f"| charge call vs native lot-charge functions | "
                  f"{_r(e['ratio_charge_call_over_native_charge_pieces'])} |",
                  f"| whole transaction incl. state root | {_r(e['ratio_whole_tx_inevm_over_native'])} |",
                  "",
                  f"Whole transaction vs plain py-evm: native {_r(e['ratio_whole_tx_native_over_plain'])}, "
                  f"in-EVM {_r(e['ratio_whole_tx_inevm_over_plain'])}. Gas of the charge call: "
                  f"median {e['charge_call_gas']['median']:.0f} (max {e['charge_call_gas']['max']}, "
                  "first charges pay for creating the coinbase/treasury accounts); the native hook "
                  "uses no EVM gas.", ""]
        targets.append(("in-EVM / native (charge step)", f"≥ {TARGETS['inevm_over_native']:.0f}×",
                        _r(e["ratio_finalize_inevm_over_native"]),
                        e["ratio_finalize_inevm_over_native"]["median"] >= TARGETS["inevm_over_native"]))
    if "scale" in b:
        s = b["scale"]
        acc = s["accounts"]
        lines += ["## 4. Scale", "",
                  f"Funded accounts ({acc['transactions']} value transfers from {acc['senders']} "
                  "senders per block; growth = same-round ratio to the smallest N):", "",
                  "| funded accounts | plugin/plain | ratio growth | plain's own growth | "
                  "plugin's growth |", "|---|---|---|---|---|"]
        counts = list(acc["counts"].items())
        for n, c in counts:
            lines.append(f"| {int(n):,} | {_r(c['ratio'])} | {_r(c['ratio_growth_vs_smallest'])} | "
                         f"{_r(c['plain_growth_vs_smallest'])} | {_r(c['plugin_growth_vs_smallest'])} |")
        lots = s["lots"]
        lines += ["", f"Live lots per sender ({lots['transactions']} value transfers, "
                  f"{lots['senders']} senders):", "",
                  "| lots per sender | per-tx / plain | growth vs 1 lot | write-back / plain | "
                  "growth vs 1 lot | floor's growth vs 1 lot | write-back / floor |", "|---|---|---|---|---|---|---|"]
        lot_rows = list(lots["lots"].items())
        for count, c in lot_rows:
            lines.append(f"| {count} | {_r(c['ratio'])} | {_r(c['ratio_growth_vs_one_lot'])} | "
                         f"{_r(c['write_back_ratio'])} | {_r(c['write_back_ratio_growth_vs_one_lot'])} | "
                         f"{_r(c['floor_ratio_growth_vs_one_lot'])} | {_r(c['write_back_over_floor'])} |")
        lines.append("")
        if "worst_case" in s:
            w = s["worst_case"]
            lines += [f"Worst case ({w['transactions']} distinct senders × 1 transfer, each fee drawing "
                      f"all {w['lots_drawn_per_fee']} lots, checked from the LotCharged logs): write-back / "
                      f"plain {_r(w['write_back_ratio_worst'])} vs {_r(w['write_back_ratio_one_lot'])} "
                      f"with one lot; {_r(w['worst_over_one_lot'])} the one-lot cost.", ""]
        worst_n, worst = max(counts, key=lambda kv: kv[1]["ratio_growth_vs_smallest"]["median"])
        targets.append((f"accounts: ratio growth {int(counts[0][0]):,} → {int(counts[-1][0]):,} "
                        "(plugin vs plain's own growth)",
                        f"≤ {TARGETS['accounts_growth']:.2f} (1.0 = plain's growth)",
                        _r(counts[-1][1]["ratio_growth_vs_smallest"]),
                        worst["ratio_growth_vs_smallest"]["median"] <= TARGETS["accounts_growth"]))
        last_count, last = lot_rows[-1]
        field = "write_back_ratio_growth_vs_one_lot"
        targets.append((f"lots (write-back): growth 1 → {last_count} live lots, the earliest covering the fee",
                        f"≤ {TARGETS['lots_growth']:.2f}", _r(last[field]),
                        last[field]["median"] <= TARGETS["lots_growth"]))
    if "import" in b:
        lines += ["## 5. Block import (decode + `import_block`, senders recovered inside)", "",
                  "| block | per-tx / plain | write-back / plain |", "|---|---|---|"]
        for size, c in b["import"]["blocks"].items():
            lines.append(f"| {size} transactions | {_r(c['ratio'])} | {_r(c['write_back_ratio'])} |")
        lines.append("")
        big = b["import"]["blocks"].get("1000")
        if big is not None:
            targets.append(("import of a 1,000-transfer block (write-back / plain)",
                            f"≤ {TARGETS['import_1000']:.2f}×", _r(big["write_back_ratio"]),
                            big["write_back_ratio"]["median"] <= TARGETS["import_1000"]))
    if "attribution" in b:
        lines += ["## 6. Attribution: the write-back design's overhead, part by part", "",
                  "Counterfactual sides in the same rounds (benchmarks/bench_attribution.py): "
                  "*reads free* serves the fee records from a memo of exact reads of the same "
                  "parent state; *writes skipped* stores no fee record (wrong state root: a "
                  "measurement device only); *both* leaves the hook's own code; *nodes cached* "
                  "walks the vault's storage trie through a content-addressed memo of decoded "
                  "nodes kept across blocks. Exact sides give the real receipts and state root "
                  "(checked). Shares are of plain py-evm's block time.", "",
                  "| workload | write-back / plain | vault reads | vault writes (root) | hook "
                  "code, net | reads+writes free / plain | nodes cached / plain |",
                  "|---|---|---|---|---|---|---|"]
        for name, c in b["attribution"]["cases"].items():
            lines.append(
                f"| {name} | {_r(c['ratio']['write_back'])} | {_pct(c['vault_reads'])} | "
                f"{_pct(c['vault_writes'])} | {_pct(c['hook_code_net'])} | "
                f"{_r(c['ratio']['both_free'])} | {_r(c['ratio']['nodes_cached'])} |")
        lines.append("")
    if "node" in b:
        lines += ["## 7. The node: a `fee-node run` subprocess under load vs the engine", "",
                  "benchmarks/bench_node.py (8 clients, pre-signed lot-paid transfers over keep-alive "
                  "HTTP; the engine imports the node's own blocks; issue 11's targets: ≥ 500 mined "
                  "tx/s unbatched in both modes, node / engine ≥ 0.6, block time never > 1 s ahead).", ""]
        lines += bench_node.render(b["node"]).splitlines()[4:] + [""]
    if targets:
        summary = ["## Targets (issue 14; in-EVM: issue 5)", "", "| target | required | measured | met |",
                   "|---|---|---|---|"]
        summary += [f"| {name} | {req} | {got} | {_met(ok)} |" for name, req, got, ok in targets]
        header += summary + [""]
    return "\n".join(header + lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, N up to 10^4; writes nothing unless --out")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS))
    parser.add_argument("--rounds", type=int, help="override the rounds of every benchmark")
    parser.add_argument("--out", type=Path, help="directory for results.json/results.md "
                        "(default: benchmarks/results for a full run)")
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    out = args.out if args.out is not None else (None if args.quick else RESULTS)
    results = run_suite(mode, args.only, args.rounds)
    command = "python benchmarks/run_all.py" + (" --quick" if args.quick else "")
    markdown = render_markdown(results, command)
    print(markdown)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        (out / "results.md").write_text(markdown)
        print(f"wrote {out / 'results.json'} and {out / 'results.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
