"""The write-back cache against its oracle, the per-transaction design.

"Mined equals imported" proves nothing for a cache: the same wrong code runs on both sides.
So two chains from one genesis, one per design, build the same randomized blocks in
lockstep, transaction by transaction — plain transfers with payers repeating, vault calls
mid-block (deposits, grants, sweeps, reverting calls), transfers from and to the treasury
and the coinbase, a contract that reads the vault's balance and views mid-block, contract
creations, transactions dropped by validation and dropped by the producer after they ran,
time jumps across lot expiries — and must agree on every inclusion decision, receipt and
block hash (state root, receipts root, bloom, gas). The oracle's blocks must also import
on a fresh write-back node. Negative controls break the flush and must be caught.
"""
import random

import pytest
from eth._utils.address import generate_contract_address
from eth_keys import keys
from eth_utils import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

import fee_plugin.writeback as writeback_module
from fee_plugin import build_chain
from fee_plugin.vault import load_account, plan_charge, reader

from .support.chain import (
    COINBASE,
    ETHER,
    GENESIS_TIME,
    OPERATOR_KEY,
    TREASURY,
    USER_KEYS,
    VALIDITY,
    VAULT,
    address,
    calldata,
    make_genesis,
    sign,
)

TREASURY_KEY = keys.PrivateKey(b"\x00" * 31 + b"\x01")
assert address(TREASURY_KEY) == TREASURY
SINK = b"\x42" * 20
PAYERS = USER_KEYS[:4]


def _observer_code() -> bytes:
    """Init code of a contract whose every call stores BALANCE(vault) in slot 0 and the
    vault's `available(caller)` in slot 1 (EVM code that would see a missed flush), then
    calls `sweepExpired(caller)` (vault storage written from inside another contract)."""
    selector = calldata("available", b"\x00" * 20)[:4]
    sweep = calldata("sweepExpired", b"\x00" * 20)[:4]
    runtime = (
        b"\x73" + VAULT + b"\x31\x60\x00\x55"  # SSTORE(0, BALANCE(vault))
        + b"\x63" + selector + b"\x60\xe0\x1b\x60\x00\x52"  # MSTORE(0, selector << 224)
        + b"\x33\x60\x04\x52"  # MSTORE(4, CALLER)
        + b"\x60\x20\x60\x40\x60\x24\x60\x00\x73" + VAULT + b"\x5a\xfa"  # STATICCALL
        + b"\x50\x60\x40\x51\x60\x01\x55"  # SSTORE(1, MLOAD(0x40))
        + b"\x63" + sweep + b"\x60\xe0\x1b\x60\x00\x52\x33\x60\x04\x52"  # calldata
        + b"\x60\x00\x60\x00\x60\x24\x60\x00\x60\x00\x73" + VAULT + b"\x5a\xf1\x50"  # CALL
        + b"\x00"  # STOP
    )
    assert len(runtime) < 256
    n = len(runtime)
    return bytes([0x60, n, 0x60, 12, 0x60, 0, 0x39, 0x60, n, 0x60, 0, 0xF3]) + runtime


class DesignsDiverged(AssertionError):
    """The write-back design did something the oracle did not."""


def same(a, b, what):
    if a != b:
        raise DesignsDiverged(f"{what}: oracle {a!r} != write-back {b!r}")


class Builder:
    """Builds one block the way a producer does: offer transactions one at a time, drop
    the invalid ones (and, if asked, one that ran), then seal and persist."""

    def __init__(self, chain):
        self.chain = chain

    def begin(self, timestamp):
        self.vm = self.chain.get_vm(self.chain.header.copy(timestamp=timestamp))
        self.header = self.vm.get_header()
        self.txs, self.receipts = [], []

    def offer(self, tx, drop_after_run=False):
        """VM.apply_transaction's steps, with a snapshot after the lock so the producer
        can still drop a transaction that ran (py-evm cannot revert across a lock)."""
        vm = self.vm
        try:
            vm.validate_transaction_against_header(self.header, tx)
            vm.state.lock_changes()
            snapshot = vm.state.snapshot()
            computation = vm.state.apply_transaction(tx)
        except ValidationError as error:
            return f"invalid: {error}"  # refused before writing anything
        receipt = vm.make_receipt(self.header, tx, computation, vm.state)
        vm.validate_receipt(receipt)
        if drop_after_run:
            vm.state.revert(snapshot)
            return "dropped"
        self.header = vm.add_receipt_to_header(self.header, receipt)
        self.txs.append(tx)
        self.receipts.append(receipt)
        return receipt

    def seal(self):
        vm = self.vm
        filled = vm.set_block_transactions_and_withdrawals(
            vm.get_block(), self.header, self.txs, self.receipts
        )
        block = vm.mine_block(filled).block
        self.chain.persist_block(block)
        self.chain.header = self.chain.create_header_from_parent(block.header)
        return block


def _candidates(rng, observer):
    """Transaction specs for one block: (key, to, value, data, gas, kind, drop_after_run)."""
    specs = []
    for _ in range(rng.randrange(0, 14)):
        key = rng.choice(PAYERS)
        roll = rng.random()
        if roll < 0.45:  # plain transfers: the cached path
            specs.append((key, rng.choice([SINK, address(rng.choice(PAYERS))]), rng.randrange(0, 10**6),
                          b"", rng.randrange(21_000, 40_000), rng.choice(["legacy", "access_list", "dynamic"])))
        elif roll < 0.53:
            specs.append((key, VAULT, rng.randrange(10**15, ETHER), calldata("deposit"), 300_000, "dynamic"))
        elif roll < 0.57:
            specs.append((OPERATOR_KEY, VAULT, ETHER // 20, calldata("grant", address(key), rng.randrange(5, 3 * VALIDITY)),
                          300_000, "dynamic"))
        elif roll < 0.61:
            specs.append((key, VAULT, 0, calldata("sweepExpired", address(rng.choice(PAYERS))), 300_000, "dynamic"))
        elif roll < 0.65:
            specs.append((key, VAULT, 0, b"\x99", 60_000, "dynamic"))  # reverts, still pays
        elif roll < 0.70:
            specs.append((key, TREASURY, rng.randrange(0, 10**6), b"", 30_000, "dynamic"))
        elif roll < 0.75:
            specs.append((key, COINBASE, rng.randrange(0, 2), b"", 30_000, "dynamic"))
        elif roll < 0.78:
            specs.append((TREASURY_KEY, rng.choice([SINK, COINBASE]), rng.randrange(0, 10**6), b"", 30_000, "dynamic"))
        elif roll < 0.84 and observer is not None:
            specs.append((key, observer, 0, b"", 300_000, "dynamic"))
        elif roll < 0.88:
            specs.append((key, None, 0, _observer_code(), 200_000, "dynamic"))
        elif roll < 0.94:  # invalid: nonce gap, or gas far beyond any lot
            gas = rng.choice([21_000, 29_000_000])
            specs.append((key, SINK, 1, b"", gas, "dynamic", "gap" if gas == 21_000 else None))
            continue
        else:
            specs.append((key, SINK, 1, b"", 21_000, "dynamic", "drop"))
            continue
    return specs


def _sign(chain, nonces, spec):
    key, to, value, data, gas, kind, *flag = spec
    flag = flag[0] if flag else None
    if address(key) not in nonces:
        nonces[address(key)] = chain.get_vm().state.get_nonce(address(key))
    nonce = nonces[address(key)] + (5 if flag == "gap" else 0)
    return sign(chain, key, to, value=value, data=data, gas=gas, kind=kind, nonce=nonce), flag == "drop"


def _fund(chain):
    """Payers and the treasury (which pays its own transactions from lots like anyone)
    start with a long lot and a short one, granted by the operator."""
    for owner in [address(key) for key in PAYERS] + [TREASURY]:
        for validity in (20 * VALIDITY, VALIDITY // 2):
            tx = sign(chain, OPERATOR_KEY, VAULT, value=ETHER // 10, gas=300_000,
                      data=calldata("grant", owner, validity))
            chain.apply_transaction(tx)
    chain.mine_block()


def run_lockstep(seed, blocks=8):
    rng = random.Random(seed)
    genesis = make_genesis()
    oracle, cached = build_chain(genesis), build_chain(genesis, write_back=True)
    assert type(cached.get_vm()).__name__.endswith("WriteBackVM")
    for chain in (oracle, cached):
        chain.set_header_timestamp(GENESIS_TIME + 1)
        _fund(chain)
    builders = Builder(oracle), Builder(cached)
    nonces = {}
    observer = None
    t = GENESIS_TIME + 1
    stats = {"included": 0, "invalid": 0, "dropped": 0}
    for _ in range(blocks):
        t += rng.choice([1, 2, 30, VALIDITY // 3, VALIDITY + 7])
        for builder in builders:
            builder.begin(t)
        for spec in _candidates(rng, observer):
            tx, drop = _sign(oracle, nonces, spec)
            outcomes = [builder.offer(tx, drop) for builder in builders]
            if isinstance(outcomes[0], str):
                same(outcomes[0].split(":")[0], outcomes[1].split(":")[0], f"outcome of {tx.hash.hex()}")
                stats["invalid" if outcomes[0].startswith("invalid") else "dropped"] += 1
                continue
            same(outcomes[0], outcomes[1], f"receipt of {tx.hash.hex()}")
            stats["included"] += 1
            nonces[tx.sender] = tx.nonce + 1
            if spec[1] is None and observer is None and outcomes[0].state_root == b"\x01":
                observer = generate_contract_address(tx.sender, tx.nonce)
        mined = [builder.seal() for builder in builders]
        same(mined[0].header, mined[1].header, f"block {mined[0].number}")
        same(mined[0].get_receipts(oracle.chaindb), mined[1].get_receipts(cached.chaindb), "receipts")
    importer = build_chain(genesis, write_back=True)
    for number in range(1, oracle.get_canonical_head().block_number + 1):
        importer.import_block(oracle.get_canonical_block_by_number(number))
    same(cached.get_canonical_head(), importer.get_canonical_head(), "imported head")
    return stats


@pytest.mark.slow
@settings(max_examples=max(settings.default.max_examples // 4, 1))  # each example: ~2 s
@given(st.integers(0, 2**32 - 1))
def test_write_back_builds_the_oracles_blocks(seed):
    run_lockstep(seed)


def test_lockstep_covers_every_path(monkeypatch):
    """One fixed run, large enough to exercise each kind of candidate and outcome, and
    the cache really used: charges kept across transactions, flushes with work to do."""
    counts = {"cached charges": 0, "flushes with charges": 0}
    cache_class = writeback_module.FeeRecordCache
    charge, flush = cache_class.charge, cache_class.flush

    def counting_charge(self, *args):
        counts["cached charges"] += 1
        return charge(self, *args)

    def counting_flush(self, *args):
        counts["flushes with charges"] += self.dirty
        return flush(self, *args)

    monkeypatch.setattr(cache_class, "charge", counting_charge)
    monkeypatch.setattr(cache_class, "flush", counting_flush)
    stats = run_lockstep(1234, blocks=40)
    assert stats["included"] >= 150 and stats["invalid"] >= 5 and stats["dropped"] >= 5, stats
    assert counts["cached charges"] >= 60 and counts["flushes with charges"] >= 20, counts
    assert counts["cached charges"] > 1.5 * counts["flushes with charges"], counts


def _skip_treasury(flush):
    def broken(self, state, vault, treasury, coinbase, *rest):
        return flush(self, state, vault, coinbase, coinbase, *rest)  # treasury's share to the coinbase
    return broken


def _forget_one_record(flush):
    def broken(self, state, vault, treasury, coinbase, *rest):
        if self.dirty:
            changed = [o for o, a in self._current.items() if a.words() != {k: a.stored[k] for k in a.words()}]
            owner = max(changed)
            self._current[owner] = self._current[owner].clean()  # one payer's charge never stored
        return flush(self, state, vault, treasury, coinbase, *rest)
    return broken


@pytest.mark.parametrize("breakage", [_skip_treasury, _forget_one_record])
def test_negative_control_broken_flush_is_caught(monkeypatch, breakage):
    monkeypatch.setattr(
        writeback_module.FeeRecordCache, "flush", breakage(writeback_module.FeeRecordCache.flush)
    )
    with pytest.raises(DesignsDiverged):
        run_lockstep(1234, blocks=40)


def test_negative_control_missing_flush_before_code_is_caught(monkeypatch):
    """The classic pitfall: EVM code runs while charges are still only in the cache."""
    from fee_plugin.payment import Payment
    from fee_plugin.writeback import WriteBackExecutorMixin

    def cacheable_even_with_code(self, tx):
        return self._payment is Payment.LOTS and tx.to not in self._special() and tx.to != b""

    monkeypatch.setattr(WriteBackExecutorMixin, "_cacheable", cacheable_even_with_code)
    with pytest.raises(DesignsDiverged):
        run_lockstep(1234, blocks=40)


# -- the cache's own journal, against a real state ----------------------------------------

def _cache_and_state():
    """A write-back VM state with Alice's account loaded and charged once (not stored)."""
    genesis = make_genesis()
    chain = build_chain(genesis, write_back=True)
    chain.set_header_timestamp(GENESIS_TIME + 1)
    _fund(chain)
    vm = chain.get_vm(chain.header.copy(timestamp=GENESIS_TIME + 10))
    state, cache = vm.state, vm.state.fee_cache
    owner = address(PAYERS[0])
    before = load_account(state, VAULT, owner, GENESIS_TIME + 10)
    cache.load(owner, before)
    cfg = genesis.fee
    charge, after = plan_charge(before, 10**12, GENESIS_TIME + 10, cfg.release_policy, cfg.low_balance_wei,
                                reader(state, VAULT, owner))
    cache.charge(after, 10**12, 4 * 10**11, 6 * 10**11)
    return state, cache, owner, before, after


def test_cache_reverts_with_the_state_and_forgets_at_a_lock():
    state, cache, owner, before, after = _cache_and_state()
    snapshot = state.snapshot()
    cache.charge(after, 5, 2, 3)  # a second charge after the snapshot
    assert cache.vault_out_wei == 10**12 + 5
    state.revert(snapshot)
    assert cache.get(owner) is after and cache.vault_out_wei == 10**12
    stale = state.snapshot()
    state.lock_changes()  # a new transaction starts: nothing before it can be undone
    cache.rollback(stale[1])  # a checkpoint from before the lock means the lock point
    assert cache.get(owner) is after and cache.dirty and cache.vault_out_wei == 10**12


def test_a_reverted_flush_restores_the_cached_charges_and_the_storage():
    state, cache, owner, before, after = _cache_and_state()
    vault_before = state.get_balance(VAULT)
    snapshot = state.snapshot()
    state.fee_flush()
    assert not cache.dirty and cache.get(owner) is None
    assert stored(state, owner) == (after.head, after.lots) != (before.head, before.lots)
    assert state.get_balance(VAULT) == vault_before - 10**12
    state.revert(snapshot)  # e.g. a call frame that flushed, then failed
    assert cache.dirty and cache.get(owner) is after
    assert stored(state, owner) == (before.head, before.lots)
    assert state.get_balance(VAULT) == vault_before
    state.fee_flush()
    assert stored(state, owner) == (after.head, after.lots)


def stored(state, owner):
    account = load_account(state, VAULT, owner, GENESIS_TIME + 10)
    return account.head, account.lots


def test_pending_moves_must_balance():
    state, cache, owner, before, after = _cache_and_state()
    with pytest.raises(AssertionError):
        cache.charge(after, 10, 4, 5)  # 1 wei would vanish


def test_negative_control_records_kept_after_the_vault_code_ran_are_caught(monkeypatch):
    """Clean cache entries survive a code-running transaction only if the vault's code did
    not run in it; pretending it never does must be caught."""
    from fee_plugin.writeback import WriteBackExecutorMixin

    monkeypatch.setattr(WriteBackExecutorMixin, "_vault_code_ran", lambda self, computation: False)
    with pytest.raises(DesignsDiverged):
        run_lockstep(1234, blocks=40)
