"""Benchmark 1 — overhead: the fee-plugin chain vs plain py-evm Prague, per transaction.

Both chains start from the same alloc (senders, and a small Vyper token predeployed with
balances for every sender) and apply the very same signed transactions; the plugin chain's
senders were granted one fee lot each by the operator, so they keep nonce 0. Per round each
side applies the block on a fresh VM at the same head and computes the state root
(`vm.state.persist()`). Cases:

- value transfers, 100 senders x 5 (payers repeat within the block);
- value transfers, 500 distinct senders x 1;
- a mix, 100 senders x 5: per sender a value transfer, a token transfer, a contract
  deployment (the token, constructor included), a token transfer, a value transfer.

Sides: plain py-evm, the plugin in both designs (per transaction, write-back) and the
floor (floor.py: plain plus the vault storage work a recorded charge cannot avoid), all in
the same rounds. plugin / floor is what the hook's own code costs above that floor.

    python benchmarks/bench_overhead.py [--rounds 9]
"""
import statistics

from floor import floor_vm_class

from bench_common import (
    TOKEN,
    VAULT,
    compile_contract,
    dynamic_tx,
    fund_by_grants,
    script_main,
    make_genesis,
    open_chain,
    plain_chain,
    plain_chain_class,
    plugin_chain,
    plugin_chain_class,
    ratios,
    recovered,
    sender_keys,
    side_by_side,
    summary,
    time_block,
    transfers,
    vyper_hashmap_slot,
)

TOKEN_BALANCE = 10**24
DEPLOY_SUPPLY = 10**6


def token_alloc(owners):
    token = compile_contract("Token")
    slot = token["layout"]["balanceOf"]["slot"]
    storage = {vyper_hashmap_slot(slot, owner): TOKEN_BALANCE for owner in owners}
    storage[token["layout"]["totalSupply"]["slot"]] = TOKEN_BALANCE * len(owners)
    return {TOKEN: {"balance": 0, "code": token["runtime"], "storage": storage}}


def token_transfer_data(to: bytes, amount: int) -> bytes:
    token = compile_contract("Token")
    return (token["selectors"]["transfer(address,uint256)"] + to.rjust(32, b"\x00")
            + amount.to_bytes(32, "big"))


def mix_txs(keys, per_sender=5):
    """Per sender, cycling: value transfer, token transfer, deployment, token transfer,
    value transfer; interleaved across senders like a real block."""
    token = compile_contract("Token")
    init = token["init"] + DEPLOY_SUPPLY.to_bytes(32, "big")
    txs = []
    for n in range(per_sender):
        for i, key in enumerate(keys):
            to = (0xB0B0_0000 + i).to_bytes(20, "big")
            kind = (0, 1, 2, 1, 0)[n % 5]
            if kind == 0:
                txs.append(dynamic_tx(key, n, to, value=1))
            elif kind == 1:
                txs.append(dynamic_tx(key, n, TOKEN, data=token_transfer_data(to, 1000), gas=100_000))
            else:
                txs.append(dynamic_tx(key, n, b"", data=init, gas=1_000_000))
    return recovered(txs)


def setup(senders=500, repeat=(100, 5), distinct=500, mix=(100, 5), lots_per_sender=1):
    """Chains (plugin funded by operator grants, plain) and the workloads of benchmark 1."""
    keys = sender_keys(max(senders, repeat[0], distinct, mix[0]))
    addresses = [k.public_key.to_canonical_address() for k in keys]
    genesis = make_genesis(addresses, extra_alloc=token_alloc(addresses))
    plugin = fund_by_grants(plugin_chain(genesis), genesis, addresses, lots_per_sender)
    plain = plain_chain(genesis)
    workloads = {
        f"value transfers, {repeat[0]} senders x {repeat[1]}": transfers(keys[:repeat[0]], repeat[1]),
        f"value transfers, {distinct} distinct senders x 1": transfers(keys[:distinct], 1),
        f"mix (transfers, token calls, deployments), {mix[0]} senders x {mix[1]}":
            mix_txs(keys[:mix[0]], mix[1]),
    }
    return genesis, plugin, plain, workloads


def check_same_execution(plugin_receipts, plain_receipts):
    """Both sides ran the workload successfully and identically apart from the fee logs."""
    assert len(plugin_receipts) == len(plain_receipts)
    for a, b in zip(plugin_receipts, plain_receipts, strict=True):
        assert a.state_root == b.state_root == b"\x01", "a benchmark transaction failed"
        assert a.gas_used == b.gas_used, (a.gas_used, b.gas_used)
        assert [log for log in a.logs if log.address != VAULT] == list(b.logs)


def block_side(chain, txs, receipts_out=None):
    def run(r):
        seconds, receipts = time_block(chain, txs, chain.header.timestamp + 10 + r)
        if receipts_out is not None and not receipts_out:
            receipts_out.extend(receipts)
        return seconds
    return run


def run(rounds=9, senders=500, repeat=(100, 5), distinct=500, mix=(100, 5)):
    genesis, plugin, plain, workloads = setup(senders, repeat, distinct, mix)
    # The same database seen through the write-back design (fee_plugin/writeback.py) and
    # through the floor (plain py-evm plus the unavoidable vault storage work).
    write_back = open_chain(plugin, plugin_chain_class(genesis, write_back=True))
    floor = open_chain(plugin, plain_chain_class(genesis, floor_vm_class(VAULT)))
    one_word = open_chain(plugin, plain_chain_class(genesis, floor_vm_class(VAULT, lot_word=False)))
    cases, checks = [], []
    for name, txs in workloads.items():
        got = ([], [], [], [], [])
        checks.append(got)
        cases.append((name, {"plugin": block_side(plugin, txs, got[0]),
                             "plain": block_side(plain, txs, got[1]),
                             "write_back": block_side(write_back, txs, got[2]),
                             "floor": block_side(floor, txs, got[3]),
                             "one_word_floor": block_side(one_word, txs, got[4])}))
    times = side_by_side(rounds, cases)
    for plugin_receipts, plain_receipts, write_back_receipts, *floor_receipts in checks:
        check_same_execution(plugin_receipts, plain_receipts)
        assert write_back_receipts == plugin_receipts, "the two designs' receipts differ"
        assert floor_receipts == [plain_receipts] * 2, "a floor executed differently from plain"
    result = {
        "benchmark": "overhead: plugin/plain per transaction, state root included",
        "rounds": rounds,
        "cases": {},
    }
    for name, txs in workloads.items():
        t = times[name]
        result["cases"][name] = {
            "transactions": len(txs),
            "ratio": summary(ratios(t["plugin"], t["plain"])),
            "write_back_ratio": summary(ratios(t["write_back"], t["plain"])),
            "floor_ratio": summary(ratios(t["floor"], t["plain"])),
            "one_word_floor_ratio": summary(ratios(t["one_word_floor"], t["plain"])),
            "write_back_over_floor": summary(ratios(t["write_back"], t["floor"])),
            # context only (absolute, machine-dependent):
            "plain_tx_per_s_median": round(len(txs) / statistics.median(t["plain"])),
            "plugin_tx_per_s_median": round(len(txs) / statistics.median(t["plugin"])),
            "write_back_tx_per_s_median": round(len(txs) / statistics.median(t["write_back"])),
        }
    return result


if __name__ == "__main__":
    script_main(__doc__, run)
