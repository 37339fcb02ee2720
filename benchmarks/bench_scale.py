"""Benchmark 4 — scale: per-transaction cost vs funded accounts and vs live lots per sender.

Accounts: for N in 10^2, 10^3, 10^4 (10^5 by default in the full run) funded accounts —
every one with ETH on both chains and one fee lot on the plugin chain — a block of 100
senders x 2 value transfers (senders among the N). Both genesis states are built with a
bulk trie builder (bench_common.build_state_trie; py-evm's own genesis path takes ~150 s at
10^5 accounts with their vault records; the smoke test checks both give the same root).
Every round runs every N on both sides, so growth is also measured side by side:
- ratio plugin/plain at each N;
- growth of the ratio vs N=10^2 (plugin's growth relative to plain's own growth; <= 1.0
  means the plugin scales no worse than plain py-evm);
- plain's own growth t_plain(N)/t_plain(10^2) and the plugin's t_plugin(N)/t_plugin(10^2),
  both within the same round.

Lots: 100 senders x 5 value transfers with 1, 8, 32, 64 (maxLiveLots) live lots per sender
(distinct expiries; the fee is drawn from the earliest-expiring lot). Ratio plugin/plain at
each lot count and its growth vs 1 lot (target: <= 10 %).

Worst case: 100 distinct senders x 1 transfer, each holding 64 lots of which the first 63
are tiny (fee // 64 wei each), so the fee draws all 64 (63 used up, moved to the spent
chain); next to the same senders holding 1 lot. What a charge costs when it reads and
writes every lot an account may hold (maxLiveLots bounds it).

    python benchmarks/bench_scale.py [--rounds 9] [--accounts 100 1000 10000 100000]
"""

from bench_common import (
    ETHER,
    LOT_VALIDITY,
    T0,
    VAULT,
    filler_addresses,
    script_main,
    make_genesis,
    open_chain,
    plain_chain,
    plain_chain_class,
    plugin_chain,
    plugin_chain_class,
    ratios,
    sender_keys,
    side_by_side,
    summary,
    time_block,
    transfers,
    uniform_lots,
)
from fee_plugin.vault import LOT_CHARGED_TOPIC
from floor import floor_vm_class

SENDERS = 100


def block_side(chain, txs):
    return lambda r: time_block(chain, txs, chain.header.timestamp + 10 + r)[0]


def account_chains(n, keys, max_live_lots=64):
    """(plugin, plain) with n funded accounts: the senders plus n - len(keys) others."""
    senders = [k.public_key.to_canonical_address() for k in keys]
    genesis = make_genesis(senders, max_live_lots=max_live_lots)
    others = filler_addresses(max(0, n - len(senders)))
    extra = {a: {"balance": 10**21, "nonce": 0, "code": b"", "storage": {}} for a in others}
    lots = {a: uniform_lots(1) for a in senders + others}
    return (plugin_chain(genesis, lots, extra, fast=True),
            plain_chain(genesis, extra, fast=True))


def run_accounts(rounds=7, counts=(100, 1000, 10000, 100000), senders=SENDERS, per_sender=2):
    keys = sender_keys(min(senders, min(counts)))
    txs = transfers(keys, per_sender)
    cases = []
    for n in counts:
        plugin, plain = account_chains(n, keys)
        cases.append((n, {"plugin": block_side(plugin, txs), "plain": block_side(plain, txs)}))
    times = side_by_side(rounds, [(str(n), sides) for n, sides in cases])
    base = str(counts[0])
    out = {}
    for n in counts:
        t = times[str(n)]
        ratio = ratios(t["plugin"], t["plain"])
        base_ratio = ratios(times[base]["plugin"], times[base]["plain"])
        out[str(n)] = {
            "ratio": summary(ratio),
            "ratio_growth_vs_smallest": summary(ratios(ratio, base_ratio)),
            "plain_growth_vs_smallest": summary(ratios(t["plain"], times[base]["plain"])),
            "plugin_growth_vs_smallest": summary(ratios(t["plugin"], times[base]["plugin"])),
        }
    return {"transactions": len(txs), "senders": len(keys), "counts": out}


def run_lots(rounds=7, lot_counts=(1, 8, 32, 64), senders=SENDERS, per_sender=5):
    keys = sender_keys(senders)
    owners = [k.public_key.to_canonical_address() for k in keys]
    genesis = make_genesis(owners, max_live_lots=max(64, max(lot_counts)))
    txs = transfers(keys, per_sender)
    plain = plain_chain(genesis, fast=True)
    cases = []
    for count in lot_counts:
        plugin = plugin_chain(genesis, {o: uniform_lots(count) for o in owners}, fast=True)
        write_back = open_chain(plugin, plugin_chain_class(genesis, write_back=True))
        floor = open_chain(plugin, plain_chain_class(genesis, floor_vm_class(VAULT)))
        cases.append((str(count), {"plugin": block_side(plugin, txs), "plain": block_side(plain, txs),
                                   "write_back": block_side(write_back, txs), "floor": block_side(floor, txs)}))
    times = side_by_side(rounds, cases)
    base = str(lot_counts[0])
    base_ratios = {side: ratios(times[base][side], times[base]["plain"]) for side in ("plugin", "write_back", "floor")}
    out = {}
    for count in lot_counts:
        t = times[str(count)]
        ratio = {side: ratios(t[side], t["plain"]) for side in ("plugin", "write_back", "floor")}
        out[str(count)] = {
            "ratio": summary(ratio["plugin"]),
            "ratio_growth_vs_one_lot": summary(ratios(ratio["plugin"], base_ratios["plugin"])),
            "write_back_ratio": summary(ratio["write_back"]),
            "write_back_ratio_growth_vs_one_lot": summary(ratios(ratio["write_back"], base_ratios["write_back"])),
            # The floor reads and writes the same two words per payer in the same (larger) vault
            # storage trie: its growth is what the trie's size alone costs.
            "floor_ratio_growth_vs_one_lot": summary(ratios(ratio["floor"], base_ratios["floor"])),
            "write_back_over_floor": summary(ratios(t["write_back"], t["floor"])),
        }
    return {"transactions": len(txs), "senders": senders, "lots": out}


def worst_case_lots(fee_wei: int, count: int = 64):
    """`count` lots in charge order: count − 1 of fee // count wei, then a large one."""
    tiny = [(fee_wei // count, 0, T0 + 1, T0 + 1 + LOT_VALIDITY + i) for i in range(count - 1)]
    return tiny + [(10 * ETHER, 0, T0 + 1, T0 + 1 + LOT_VALIDITY + count)]


def run_worst_case(rounds=7, senders=SENDERS, count=64):
    keys = sender_keys(senders)
    owners = [k.public_key.to_canonical_address() for k in keys]
    genesis = make_genesis(owners, max_live_lots=count)
    txs = transfers(keys, 1)
    fee_wei = txs[0].gas * txs[0].max_fee_per_gas  # base 1 gwei + tip 1 gwei = the max fee
    plain = plain_chain(genesis, fast=True)
    layouts = {"1": uniform_lots(1), str(count): worst_case_lots(fee_wei, count)}
    cases = []
    for name, lots in layouts.items():
        plugin = plugin_chain(genesis, {o: lots for o in owners}, fast=True)
        write_back = open_chain(plugin, plugin_chain_class(genesis, write_back=True))
        _, receipts = time_block(write_back, txs, write_back.header.timestamp + 10)
        drawn = {sum(1 for log in r.logs if log.topics[0] == LOT_CHARGED_TOPIC) for r in receipts}
        assert drawn == {int(name)}, f"every fee must draw {name} lot(s), drew {drawn}"
        cases.append((name, {"write_back": block_side(write_back, txs), "plain": block_side(plain, txs)}))
    times = side_by_side(rounds, cases)
    one = ratios(times["1"]["write_back"], times["1"]["plain"])
    worst = ratios(times[str(count)]["write_back"], times[str(count)]["plain"])
    return {"transactions": len(txs), "senders": senders, "lots_drawn_per_fee": count,
            "write_back_ratio_one_lot": summary(one), "write_back_ratio_worst": summary(worst),
            "worst_over_one_lot": summary(ratios(worst, one))}


def run(rounds=9, counts=(100, 1000, 10000, 100000), lot_counts=(1, 8, 32, 64),
        senders=SENDERS, account_txs_per_sender=2, lot_txs_per_sender=5):
    return {
        "benchmark": "scale: funded accounts and live lots per sender",
        "rounds": rounds,
        "accounts": run_accounts(rounds, counts, senders, account_txs_per_sender),
        "lots": run_lots(rounds, lot_counts, senders, lot_txs_per_sender),
        "worst_case": run_worst_case(rounds, senders),
    }


def _extra_arguments(parser):
    parser.add_argument("--accounts", type=int, nargs="+", default=[100, 1000, 10000, 100000])
    parser.add_argument("--lots", type=int, nargs="+", default=[1, 8, 32, 64])
    return lambda args: {"counts": tuple(args.accounts), "lot_counts": tuple(args.lots)}


if __name__ == "__main__":
    script_main(__doc__, run, _extra_arguments)
