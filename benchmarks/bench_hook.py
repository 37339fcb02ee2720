"""Benchmark 2 — the hook alone: the plugin's own work per transaction vs the whole one.

Same chains and transactions as benchmark 1, reopened through instrumented VM classes
(instrument.py) that time every executor phase, receipt building and validation on BOTH
sides, plus the plugin's own pieces (fee-account read, lot charge, fee logs). Per round:

- hook = the plugin's validation (FeeExecutorMixin.validate_transaction: stock-equivalent
  checks + fee-account read + availability) + its charge (FeeExecutorMixin.finalize_computation:
  refund math, lot charge, vault/treasury/coinbase moves, fee logs) + the receipt cost of the
  fee logs (plugin make_receipt + validate_receipt minus plain's: the logs bloom);
- hook fraction = hook / the whole plugin transaction (apply + state root);
- net hook fraction = (hook - stock validate_transaction - stock finalize_computation) /
  the whole plugin transaction: what the hook adds over the stock code it replaces.

    python benchmarks/bench_hook.py [--rounds 7]
"""
import statistics
import time

import fee_plugin.executor
from eth.vm.forks import PragueVM

import bench_overhead
from bench_common import open_chain, script_main, plain_chain_class, plugin_chain_class, summary
from fee_plugin import fee_vm_class
from instrument import (
    EXECUTOR_PHASES,
    PLUGIN_EXECUTOR_PHASES,
    Timers,
    activate,
    instrumented_vm,
    timed_functions,
)

PLUGIN_FUNCTIONS = ("load_account", "plan_charge", "write_account", "charge_logs")


def timed_block(chain, txs, timestamp, timers):
    """Whole-block seconds with the state root, phases accumulated in `timers`."""
    activate(timers)
    header = chain.header.copy(timestamp=timestamp)
    vm = chain.get_vm(header)
    start = time.perf_counter()
    vm.apply_all_transactions(txs, header)
    middle = time.perf_counter()
    vm.state.persist()
    end = time.perf_counter()
    timers.add("persist", end - middle)
    timers.add("whole", end - start)
    return dict(timers.seconds)


def instrumented_chains(genesis, plugin, plain):
    plugin_vm = instrumented_vm(fee_vm_class(genesis), EXECUTOR_PHASES + PLUGIN_EXECUTOR_PHASES)
    plain_vm = instrumented_vm(PragueVM)
    return (open_chain(plugin, plugin_chain_class(genesis, plugin_vm)),
            open_chain(plain, plain_chain_class(genesis, plain_vm)))


def fractions(p, s):
    """Per-round fractions from plugin phases `p` and plain phases `s` (seconds)."""
    receipt_p = p.get("make_receipt", 0) + p.get("validate_receipt", 0)
    receipt_s = s.get("make_receipt", 0) + s.get("validate_receipt", 0)
    logs = receipt_p - receipt_s
    hook = p["validate_transaction"] + p["finalize_computation"] + logs
    stock_replaced = s["validate_transaction"] + s["finalize_computation"]
    whole = p["whole"]
    charge_pieces = (p.get("load_account@finalize", 0) + p.get("plan_charge", 0)
                     + p.get("write_account", 0) + p.get("charge_logs", 0))
    return {
        "hook_fraction": hook / whole,
        "net_hook_fraction": (hook - stock_replaced) / whole,
        "validation_fraction": p["validate_transaction"] / whole,
        "fee_account_read_and_check_fraction": p["_choose_payment"] / whole,
        "charge_fraction": p["finalize_computation"] / whole,
        "lot_charge_pieces_fraction": charge_pieces / whole,
        "fee_logs_receipt_fraction": logs / whole,
        "state_root_extra_fraction": (p["persist"] - s["persist"]) / whole,
        "evm_fraction": p["build_computation"] / whole,
        # the plugin's phases in units of the same round's whole plain transaction
        "plugin_over_plain_whole": p["whole"] / s["whole"],
        "hook_in_plain_tx_units": hook / s["whole"],
    }


def run(rounds=7, senders=500, repeat=(100, 5), distinct=500, mix=(100, 5), workloads=None):
    genesis, plugin, plain, all_workloads = bench_overhead.setup(senders, repeat, distinct, mix)
    plugin, plain = instrumented_chains(genesis, plugin, plain)
    names = list(all_workloads) if workloads is None else workloads
    result = {"benchmark": "the hook alone vs the whole transaction", "rounds": rounds, "cases": {}}
    plugin_timers, plain_timers = Timers(), Timers()
    with timed_functions(fee_plugin.executor, PLUGIN_FUNCTIONS):
        for name in names:
            txs = all_workloads[name]
            per_round = []
            for r in range(-1, rounds):  # one warm-up round
                ts = plugin.header.timestamp + 10 + r
                if r % 2:
                    s = timed_block(plain, txs, ts, plain_timers)
                    p = timed_block(plugin, txs, ts, plugin_timers)
                else:
                    p = timed_block(plugin, txs, ts, plugin_timers)
                    s = timed_block(plain, txs, ts, plain_timers)
                if r >= 0:
                    per_round.append((p, s))
            keys = fractions(*per_round[0])
            case = {"transactions": len(txs)}
            for key in keys:
                case[key] = summary([fractions(p, s)[key] for p, s in per_round])
            # per-phase share of each side's own whole transaction (medians)
            phases = sorted(set(per_round[0][0]) | set(per_round[0][1]))
            case["phase_share_of_whole_tx"] = {
                phase: {
                    "plugin": round(statistics.median(p.get(phase, 0) / p["whole"] for p, _ in per_round), 4),
                    "plain": round(statistics.median(s.get(phase, 0) / s["whole"] for _, s in per_round), 4),
                }
                for phase in phases if phase != "whole"
            }
            result["cases"][name] = case
    return result


if __name__ == "__main__":
    script_main(__doc__, run)
