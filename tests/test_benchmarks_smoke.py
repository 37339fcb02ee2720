"""The benchmark code still runs (tiny N) and its shortcuts are faithful.

Speed is measured by `python benchmarks/run_all.py` only: nothing here asserts a ratio or a
time. What is asserted is that every benchmark function runs end to end, that the results
render, and that the benchmarks' own shortcuts give exactly what the real paths give (bulk
genesis trie vs py-evm's genesis; lot words written into genesis vs real operator grants;
the in-EVM PaymasterVault charge vs the native hook).
"""
import io
import sys

import pytest

from .support.chain import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import bench_common as bc  # noqa: E402
import bench_inevm  # noqa: E402
import run_all  # noqa: E402
from fee_plugin.query import read_stored_account  # noqa: E402
from fee_plugin.vault import load_account  # noqa: E402

@pytest.mark.slow

def test_every_benchmark_runs_on_a_tiny_workload_and_renders():
    in_process = tuple(name for name in run_all.BENCHMARKS if name != "node")  # node: test_bench_node_smoke
    results = run_all.run_suite("smoke", only=in_process, log=io.StringIO())
    b = results["benchmarks"]
    assert set(b) == set(in_process)
    for case in b["overhead"]["cases"].values():
        assert case["ratio"]["median"] > 0
    for case in b["hook"]["cases"].values():
        assert "hook_fraction" in case and "phase_share_of_whole_tx" in case
    assert b["inevm"]["charge_call_gas"]["median"] > 0
    assert set(b["scale"]["accounts"]["counts"]) == {"4", "20"}
    assert set(b["scale"]["lots"]["lots"]) == {"1", "3"}
    assert set(b["import"]["blocks"]) == {"4"}
    assert len(b["attribution"]["cases"]) == 4  # its own run checked the exact sides
    markdown = run_all.render_markdown(results)
    for heading in ("## Targets", "## 1.", "## 2.", "## 3.", "## 4.", "## 5.", "## 6."):
        assert heading in markdown


def test_bulk_genesis_trie_gives_py_evms_genesis():
    keys = bc.sender_keys(5)
    owners = [k.public_key.to_canonical_address() for k in keys]
    genesis = bc.make_genesis(owners, max_live_lots=64)
    extra = {a: {"balance": 7 + i, "nonce": i % 3, "code": b"\x60\x00" * (i % 2), "storage": {1: i}}
             for i, a in enumerate(bc.filler_addresses(40))}
    lots = {o: bc.uniform_lots(1 + i) for i, o in enumerate(owners)}
    for build in (lambda fast: bc.plugin_chain(genesis, lots, extra, fast=fast),
                  lambda fast: bc.plain_chain(genesis, extra, fast=fast)):
        slow, fast = build(False), build(True)
        assert slow.get_canonical_head() == fast.get_canonical_head()
        txs = bc.transfers(keys, 2)
        _, slow_receipts = bc.time_block(slow, txs, bc.T0 + 10)
        _, fast_receipts = bc.time_block(fast, txs, bc.T0 + 10)
        assert slow_receipts == fast_receipts


def test_lot_words_in_genesis_equal_real_grants():
    keys = bc.sender_keys(4)
    owners = [k.public_key.to_canonical_address() for k in keys]
    genesis = bc.make_genesis(owners, max_live_lots=64)
    granted = bc.fund_by_grants(bc.plugin_chain(genesis), genesis, owners, lots_per_owner=3)
    prefunded = bc.plugin_chain(genesis, {o: bc.uniform_lots(3) for o in owners})
    a = granted.get_vm().state
    b = prefunded.get_vm().state
    for owner in owners:
        assert read_stored_account(a, bc.VAULT, owner) == read_stored_account(b, bc.VAULT, owner)
    assert a.get_balance(bc.VAULT) == b.get_balance(bc.VAULT)


def test_in_evm_charge_leaves_what_the_native_hook_leaves():
    """Layout v3: sweeps of expired front lots (one with a remainder, one used up), a
    charge spanning two lots, lots used up exactly and retired to the spent chain (one
    drawn, one read on past the drawn lots because the chain's front retired), charge order
    by expiry, a status change: same words, balances, receipts and logs, and each of these
    is checked to have happened."""
    from fee_plugin.layout import NO_LOT, account_base_slot, head1_slot, link, lot_slot, unpack_totals
    from fee_plugin.lots import Status
    from fee_plugin.vault import (FEE_CHARGED_TOPIC, LOT_CHARGED_TOPIC, LOT_EXPIRED_TOPIC,
                                  STATUS_CHANGED_TOPIC)

    keys = bc.sender_keys(3)
    owners = [k.public_key.to_canonical_address() for k in keys]
    genesis = bc.make_genesis(owners, max_live_lots=64)  # upfront lots, lowBalance 0
    fee = 21_000 * 2 * bc.GWEI  # a transfer at the benchmarks' gas price
    T0, ETHER = bc.T0, bc.ETHER
    t = T0 + 20
    lots = {
        # slot 0 expired (swept, remainder to the treasury); slot 1 pays tx 1, then is
        # used up exactly by tx 2, which draws its rest from slot 2 (two lots).
        owners[0]: [(10**15, 0, T0 - 100, T0 + 5), (fee + fee // 2, 0, T0, T0 + 10**6),
                    (10 * ETHER, 0, T0, T0 + 10**7)],
        # slot 0 covers the fee exactly: used up, retired; the front retired, so slot 1
        # (already used up, still on the charge chain) is read and retired too; the
        # account goes EXHAUSTED.
        owners[1]: [(fee, 0, T0, T0 + 10**6), (10**15, 10**15, T0, T0 + 2 * 10**6)],
        # charge order by expiry: slot 2 (earliest unexpired expiry) pays; slot 3 expired
        # and used up: swept with remainder 0 (head1 unchanged).
        owners[2]: [(10 * ETHER, 0, T0, T0 + 10**7 + 1), (10 * ETHER, 5, T0 - 1, T0 + 10**7 + 1),
                    (10 * ETHER, 0, T0, T0 + 10**7), (10**15, 10**15, T0 - 100, T0 + 5)],
    }
    txs = bc.transfers(keys[:1], 2) + bc.transfers(keys[1:2], 1) + bc.transfers(keys[2:], 1)
    native, inevm, _ = bench_inevm.chains(genesis, lots, plain_too=False)
    before = {o: load_account(native.get_vm().state, bc.VAULT, o) for o in owners}
    bench_inevm.InEvmChargeMixin.charge_gas.clear()
    receipts = bench_inevm.check_equivalent(genesis, native, inevm, txs, t, owners)
    assert len(bench_inevm.InEvmChargeMixin.charge_gas) == len(txs)  # PaymasterVault charged

    def events(receipt, topic):
        return [tuple(int.from_bytes(log.data[i:i + 32], "big") for i in range(0, len(log.data), 32))
                for log in receipt.logs if log.topics[0] == topic]

    # Every transaction was paid from lots, with the fee the scenario assumes.
    for receipt in receipts:
        assert [e[0] for e in events(receipt, FEE_CHARGED_TOPIC)] == [fee]
    # The native state after the block (equal to the in-EVM one: checked above).
    state = bench_inevm.apply_block(native, txs, t)[0]  # the chain's head did not move
    after = {o: load_account(state, bc.VAULT, o) for o in owners}
    by_slot = {o: {w.lot.slot: w for w in after[o].lots} for o in owners}
    base = {o: account_base_slot(o) for o in owners}

    def word(owner, slot):
        return state.get_storage(bc.VAULT, lot_slot(base[owner], slot))

    # owners[0], tx 1: sweep of slot 0 (remainder 10**15), fee from slot 1.
    assert events(receipts[0], LOT_EXPIRED_TOPIC) == [(0, 10**15)]
    assert events(receipts[0], LOT_CHARGED_TOPIC) == [(1, fee)]
    assert word(owners[0], 0) == 0
    # tx 2: the charge spans two lots; slot 1 used up exactly, on the spent chain now.
    assert events(receipts[1], LOT_CHARGED_TOPIC) == [(1, fee // 2), (2, fee - fee // 2)]
    head = after[owners[0]].head
    assert head.first == link(2) and head.spent == link(1)
    assert [w.lot.slot for w in after[owners[0]].lots] == [2]
    assert by_slot[owners[0]][2].lot.used == fee - fee // 2
    assert (word(owners[0], 1) >> 88) & (2**84 - 1) == fee + fee // 2  # used == amount
    assert word(owners[0], 1) & 0xFF == NO_LOT
    assert head.line.available == before[owners[0]].head.line.available - 10**15 - 2 * fee
    assert head.line.anchor == t
    # owners[1]: slot 0 used up exactly, slot 1 read on and retired too; EXHAUSTED.
    assert events(receipts[2], LOT_CHARGED_TOPIC) == [(0, fee)]
    head = after[owners[1]].head
    assert head.first == NO_LOT and head.spent == link(1) and after[owners[1]].lots == ()
    assert word(owners[1], 1) & 0xFF == link(0) and word(owners[1], 0) & 0xFF == NO_LOT
    assert (word(owners[1], 0) >> 88) & (2**84 - 1) == fee
    assert head.line.available == 0 and head.status == Status.EXHAUSTED
    assert events(receipts[2], STATUS_CHANGED_TOPIC) == [(Status.ACTIVE, Status.EXHAUSTED)]
    assert before[owners[1]].head.status == Status.ACTIVE
    assert [log.topics[0] for log in receipts[2].logs][-2:] == [FEE_CHARGED_TOPIC, STATUS_CHANGED_TOPIC]
    # owners[2]: used-up expired slot 3 swept (remainder 0), then slot 2 pays (charge order).
    assert events(receipts[3], LOT_EXPIRED_TOPIC) == [(3, 0)]
    assert events(receipts[3], LOT_CHARGED_TOPIC) == [(2, fee)]
    assert word(owners[2], 3) == 0 and after[owners[2]].head.first == link(2)
    # A sweep adds its remainder to head1.expired, and only then is head1 written.
    assert [unpack_totals(state.get_storage(bc.VAULT, head1_slot(base[o]))).expired
            for o in owners] == [10**15, 0, 0]
    # No status change where the account stayed ACTIVE.
    for i in (0, 1, 3):
        assert events(receipts[i], STATUS_CHANGED_TOPIC) == []


@pytest.mark.parametrize("broken", ["tip to the treasury", "wrong gasUsed in the log"])
def test_equivalence_check_catches_a_wrong_in_evm_charge(monkeypatch, broken):
    """Negative control: the comparison fails when the in-EVM charge differs slightly."""
    from fee_plugin.lots import InvariantError
    keys = bc.sender_keys(2)
    owners = [k.public_key.to_canonical_address() for k in keys]
    genesis = bc.make_genesis(owners)
    native, inevm, _ = bench_inevm.chains(genesis, {o: bc.uniform_lots(1) for o in owners},
                                          plain_too=False)
    calldata = bench_inevm.charge_calldata
    if broken == "tip to the treasury":
        wrong = lambda payer, fee, tip, gas: calldata(payer, fee, 0, gas)  # noqa: E731
    else:
        wrong = lambda payer, fee, tip, gas: calldata(payer, fee, tip, gas + 1)  # noqa: E731
    monkeypatch.setattr(bench_inevm, "charge_calldata", wrong)
    with pytest.raises(AssertionError) as caught:
        bench_inevm.check_equivalent(genesis, native, inevm, bc.transfers(keys, 1), bc.T0 + 20, owners)
    # The comparison failed, not a money invariant of the native side (also an AssertionError).
    assert not isinstance(caught.value, InvariantError)


def test_attribution_counterfactuals_undo_themselves_and_are_checked():
    import bench_attribution as ba
    import eth.db.storage as storage_module

    import fee_plugin.executor as executor_module
    import fee_plugin.writeback as writeback_module

    real = (executor_module.load_account, writeback_module.write_account,
            storage_module.StorageLookup._get_read_trie)
    with ba.reads_free({}), ba.writes_skipped(), ba.vault_nodes_cached({}):
        assert executor_module.load_account is not real[0]
        assert writeback_module.write_account is not real[1]
    assert (executor_module.load_account, writeback_module.write_account,
            storage_module.StorageLookup._get_read_trie) == real
    # The check catches a counterfactual that changed the block (negative controls).
    good = {"write_back": {0: ("receipts", b"root")}, "reads_free": {0: ("receipts", b"root")},
            "nodes_cached": {0: ("receipts", b"root")},
            "writes_skipped": {0: ("receipts", b"other")}, "both_free": {0: ("receipts", b"other")}}
    ba.check_outcomes(good)
    for side, bad in (("reads_free", ("receipts", b"stale")), ("nodes_cached", ("x", b"root")),
                      ("writes_skipped", ("receipts", b"root"))):
        with pytest.raises(AssertionError):
            ba.check_outcomes(dict(good, **{side: {0: bad}}))
