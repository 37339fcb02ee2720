"""The node's block builder against its oracle, the per-transaction design.

The node builds each block in one VM on the write-back design (node/builder.py). Here a
node builds blocks from a varied pool through its own producer path (`Node.produce`):
many senders with several transactions each, lot-paid and natively paid, plain transfers
of every type, transfers to the treasury and the coinbase, contract creations, calls to
a contract that reads the vault and the coinbase mid-block and sweeps through the vault,
reverting calls (a contract's REVERT, a bad vault selector), deposits and grants, and
transactions that turn invalid at build time (a sender frozen in the same block, a
lot that expired between admission and the block, every lot expired by a time jump).

Independently, every block is re-executed on the per-transaction design
(`build_chain(genesis)`, write_back=False): its transactions applied one by one in the
block's order with the block's timestamp and coinbase. Receipts (status, cumulative gas,
bloom, logs) must agree one by one, then the sealed headers (state root, receipts root,
gas used, bloom, hash); the oracle must also refuse what the builder skipped, with the
same reason, and a fresh per-transaction chain must import the node's blocks. Negative
controls break the write-back path and must be caught.
"""
import random

import pytest
from eth._utils.address import generate_contract_address
from eth_keys import keys
from eth_utils import ValidationError

import fee_plugin.writeback as writeback_module
from fee_plugin import build_chain, load_genesis
from fee_plugin.node import ManualClock, Node, TxRejected

from .support.chain import (
    COINBASE,
    ETHER,
    GENESIS_TIME,
    GWEI,
    OPERATOR_KEY,
    TREASURY,
    VALIDITY,
    VAULT,
    address,
    calldata,
    genesis_dict,
    sign,
)

LOT_KEYS = tuple(keys.PrivateKey(bytes([0x60 + i]) * 32) for i in range(6))  # deposit first
NATIVE_KEYS = tuple(keys.PrivateKey(bytes([0x70 + i]) * 32) for i in range(4))  # no fee account
VICTIM = keys.PrivateKey(b"\x7e" * 32)  # frozen in the block that holds its transactions
GRANTEE = keys.PrivateKey(b"\x7f" * 32)  # one short granted lot, expired before its block
SINK = b"\x42" * 20
BLOCKS = 16


class DesignsDiverged(AssertionError):
    """The node's builder did something the per-transaction design does not."""


def same(oracle, built, what):
    if oracle != built:
        raise DesignsDiverged(f"{what}: per-transaction {oracle!r} != builder {built!r}")


def _init_code(runtime: bytes) -> bytes:
    n = len(runtime)
    assert n < 256
    return bytes([0x60, n, 0x60, 12, 0x60, 0, 0x39, 0x60, n, 0x60, 0, 0xF3]) + runtime


def observer_init() -> bytes:
    """A contract whose every call stores BALANCE(vault), BALANCE(coinbase) and the
    vault's `available(caller)` (EVM code that would see a charge not yet stored), then
    calls the vault's `sweepExpired(caller)` (vault storage written from a contract)."""
    available = calldata("available", b"\x00" * 20)[:4]
    sweep = calldata("sweepExpired", b"\x00" * 20)[:4]
    runtime = (
        b"\x73" + VAULT + b"\x31\x60\x00\x55"  # SSTORE(0, BALANCE(vault))
        + b"\x41\x31\x60\x02\x55"  # SSTORE(2, BALANCE(COINBASE))
        + b"\x63" + available + b"\x60\xe0\x1b\x60\x00\x52\x33\x60\x04\x52"  # available(CALLER)
        + b"\x60\x20\x60\x40\x60\x24\x60\x00\x73" + VAULT + b"\x5a\xfa"  # STATICCALL
        + b"\x50\x60\x40\x51\x60\x01\x55"  # SSTORE(1, MLOAD(0x40))
        + b"\x63" + sweep + b"\x60\xe0\x1b\x60\x00\x52\x33\x60\x04\x52"  # sweepExpired(CALLER)
        + b"\x60\x00\x60\x00\x60\x24\x60\x00\x60\x00\x73" + VAULT + b"\x5a\xf1\x50"  # CALL
        + b"\x00"
    )
    return _init_code(runtime)


REVERTER_INIT = _init_code(b"\x60\x00\x60\x00\xfd")  # REVERT(0, 0)


def oracle_genesis(**fee):
    raw = genesis_dict(**fee)
    for key in LOT_KEYS + NATIVE_KEYS + (VICTIM, GRANTEE):
        raw["alloc"]["0x" + address(key).hex()] = {"balance": str(100 * ETHER)}
    return load_genesis(raw)


class Scenario:
    """Drives a node block by block from a seeded generator of varied transactions."""

    def __init__(self, genesis, seed, **node_kwargs):
        self.rng = random.Random(seed)
        self.clock = ManualClock(GENESIS_TIME + 10)
        self.node = Node(genesis, clock=self.clock, **node_kwargs)
        self.built = []
        self.node.listeners.append(self.built.append)
        self.sent = {}  # hash -> tx
        self.contracts = {}  # "observer"/"reverter" -> address
        self.rejected = 0

    def send(self, key, to, value=0, data=b"", gas=21_000, tip=None, max_fee=None, kind=None):
        rng = self.rng
        tip = rng.choice([GWEI // 10, GWEI // 4, GWEI // 2, GWEI]) if tip is None else tip
        max_fee = rng.choice([2 * GWEI, 3 * GWEI]) if max_fee is None else max_fee
        kind = rng.choice(["dynamic", "dynamic", "access_list", "legacy"]) if kind is None else kind
        nonce = self.node.pool.next_nonce(address(key))
        tx = sign(self.node.chain, key, to, value=value, data=data, gas=gas, kind=kind,
                  max_fee=max_fee, tip=tip, nonce=nonce)
        try:
            self.node.send_transaction(tx)
        except TxRejected:
            self.rejected += 1  # e.g. a lot-paid transfer after every lot expired
            return None
        self.sent[tx.hash] = tx
        return tx

    def random_tx(self, key):
        rng = self.rng
        roll = rng.random()
        observer, reverter = self.contracts.get("observer"), self.contracts.get("reverter")
        if roll < 0.40:
            to = rng.choice([SINK, address(rng.choice(LOT_KEYS + NATIVE_KEYS))])
            return self.send(key, to, value=rng.randrange(0, 10**6))
        if roll < 0.45:
            return self.send(key, SINK, data=bytes(rng.randrange(256) for _ in range(600)), gas=60_000)
        if roll < 0.50:
            return self.send(key, TREASURY, value=rng.randrange(0, 10**6), gas=30_000)
        if roll < 0.55:
            return self.send(key, COINBASE, value=rng.randrange(0, 3), gas=30_000)
        if roll < 0.65 and observer is not None:
            return self.send(key, observer, gas=300_000)
        if roll < 0.70 and reverter is not None:
            return self.send(key, reverter, gas=60_000)  # reverts, still pays
        if roll < 0.75:
            return self.send(key, VAULT, data=b"\x99", gas=60_000)  # no such function: reverts
        if roll < 0.82:
            return self.send(key, VAULT, value=rng.randrange(10**15, ETHER // 10), data=calldata("deposit"),
                             gas=300_000)
        if roll < 0.88:
            owner = address(rng.choice(LOT_KEYS + (key,)))
            return self.send(key, VAULT, data=calldata("sweepExpired", owner), gas=300_000)
        if roll < 0.94:
            tx = self.send(key, None, data=observer_init(), gas=300_000)
            if tx is not None and observer is None:
                self.contracts["observer"] = generate_contract_address(tx.sender, tx.nonce)
            return tx
        tx = self.send(key, None, data=REVERTER_INIT, gas=100_000)
        if tx is not None and reverter is None:
            self.contracts["reverter"] = generate_contract_address(tx.sender, tx.nonce)
        return tx

    def block(self, index):
        """Fill the pool for block `index` and produce it; returns the BuiltBlock."""
        rng, dt = self.rng, self.rng.choice([1, 1, 2, 3, 30])
        if index == 0:  # bootstrap deposits pay natively; the operator's grant too
            for key in LOT_KEYS + (VICTIM,):
                self.send(key, VAULT, value=ETHER, data=calldata("deposit"), gas=300_000)
        elif index == 1:
            for name, key, init in (("observer", LOT_KEYS[0], observer_init()),
                                    ("reverter", NATIVE_KEYS[0], REVERTER_INIT)):
                tx = self.send(key, None, data=init, gas=300_000, kind="dynamic")
                self.contracts[name] = generate_contract_address(tx.sender, tx.nonce)
        elif index == 4:  # the victim's transactions and its freeze meet in one block
            for _ in range(3):
                self.send(VICTIM, SINK, value=1)
            self.send(OPERATOR_KEY, VAULT, data=calldata("freeze", address(VICTIM)), gas=300_000,
                      tip=2 * GWEI, max_fee=3 * GWEI, kind="dynamic")
        elif index == 6:
            self.send(OPERATOR_KEY, VAULT, value=ETHER // 100, data=calldata("grant", address(GRANTEE), 10),
                      gas=300_000, kind="dynamic")
        elif index == 7:  # admitted while the grantee's lot is live; built after it expired
            for _ in range(2):
                assert self.send(GRANTEE, SINK, value=1) is not None
            dt = 30
        elif index == 11:  # every deposited lot expires before this block
            dt = VALIDITY + 7
        if index >= 2:
            for key in rng.sample(LOT_KEYS + NATIVE_KEYS, 7):
                for _ in range(rng.randint(1, 4)):
                    self.random_tx(key)
            if rng.random() < 0.4:
                owner = rng.choice(LOT_KEYS)
                self.send(OPERATOR_KEY, VAULT, value=ETHER // 20,
                          data=calldata("grant", address(owner), rng.randrange(60, 3 * VALIDITY)), gas=300_000)
        self.clock.advance(dt)
        before = len(self.built)
        assert self.node.produce() is not None
        assert len(self.built) == before + 1
        return self.built[-1]


def receipt_fields(receipt):
    logs = [(log.address, tuple(log.topics), log.data) for log in receipt.logs]
    return receipt.state_root, receipt.gas_used, receipt.bloom, logs


def replay_per_transaction(oracle, built, sent):
    """Re-execute the node's block on the per-transaction design and compare."""
    block = built.block
    n = block.number
    parent = oracle.get_canonical_head()
    same(parent.hash, block.header.parent_hash, f"block {n} parent")
    header = oracle.create_header_from_parent(
        parent, timestamp=block.header.timestamp, coinbase=block.header.coinbase)
    vm = oracle.get_vm(header)
    receipts = []
    for i, tx in enumerate(block.transactions):
        try:
            receipt, _ = vm.apply_transaction(header, tx)
        except ValidationError as err:
            raise DesignsDiverged(f"block {n} transaction {i}: per-transaction design refuses it: {err}")
        header = vm.add_receipt_to_header(header, receipt)
        receipts.append(receipt)
        same(receipt_fields(receipt), receipt_fields(built.receipts[i]), f"block {n} receipt {i}")
        same(receipt, built.receipts[i], f"block {n} receipt {i}")
    same(len(receipts), len(built.receipts), f"block {n} receipt count")
    filled = vm.set_block_transactions_and_withdrawals(vm.get_block(), header, list(block.transactions), receipts)
    sealed = vm.mine_block(filled).block
    oracle.chaindb.persist_block(sealed)
    for field in ("state_root", "receipt_root", "gas_used", "bloom", "transaction_root", "timestamp", "coinbase"):
        same(getattr(sealed.header, field), getattr(block.header, field), f"block {n} {field}")
    same(sealed.hash, block.hash, f"block {n} hash")
    # What the builder skipped as invalid, the per-transaction design refuses too (on the
    # block's post-state and context: each reason here outlives the rest of its block).
    probe = oracle.get_vm(sealed.header)
    for tx_hash, reason in built.invalid.items():
        try:
            probe.apply_transaction(sealed.header, sent[tx_hash])
        except ValidationError as err:
            same(str(err), reason, f"block {n} reason for skipping 0x{tx_hash.hex()}")
        else:
            raise DesignsDiverged(f"block {n}: the builder skipped 0x{tx_hash.hex()} ({reason}), "
                                  "the per-transaction design accepts it")
    return receipts


def run(genesis, seed=11, blocks=BLOCKS, **node_kwargs):
    """Drive a node through `blocks` blocks against the oracle; (stats, the blocks built)."""
    scenario = Scenario(genesis, seed, **node_kwargs)
    oracle = build_chain(genesis)
    assert not type(oracle.get_vm()).__name__.endswith("WriteBackVM")
    assert type(scenario.node.builder.chain.get_vm()).__name__.endswith("WriteBackVM")
    stats = {"lots": 0, "native": 0, "created": 0, "reverted": 0, "vault": 0, "code": 0, "invalid": []}
    for index in range(blocks):
        built = scenario.block(index)
        receipts = replay_per_transaction(oracle, built, scenario.sent)
        for tx, receipt in zip(built.block.transactions, receipts):
            charged = any(log.address == VAULT for log in receipt.logs)
            if tx.to not in (VAULT, b""):
                stats["lots" if charged else "native"] += 1
            stats["created"] += tx.to == b"" and receipt.state_root == b"\x01"
            stats["reverted"] += receipt.state_root != b"\x01"
            stats["vault"] += tx.to == VAULT
            stats["code"] += tx.to in scenario.contracts.values()
        stats["invalid"] += list(built.invalid.values())
    importer = build_chain(genesis)  # py-evm's own import, per-transaction design
    node_chain = scenario.node.chain
    for number in range(1, node_chain.get_canonical_head().block_number + 1):
        importer.import_block(node_chain.get_canonical_block_by_number(number))
    same(importer.get_canonical_head(), node_chain.get_canonical_head(), "imported head")
    stats["rejected"] = scenario.rejected
    scenario.node.close()
    return stats, scenario.built


GENESES = {
    "upfront": dict(consumption="upfront", noAccount="native"),
    "uniform": dict(consumption="uniform", initialReleaseBps=5000, noAccount="native"),
}


@pytest.mark.parametrize("fee", ["upfront", pytest.param("uniform", marks=pytest.mark.slow)])
def test_node_builder_builds_the_per_transaction_designs_blocks(fee, monkeypatch):
    counts = {"cached charges": 0}
    charge = writeback_module.FeeRecordCache.charge

    def counting_charge(self, *args):  # a spy: the builder's write-back path really caches
        counts["cached charges"] += 1
        return charge(self, *args)

    monkeypatch.setattr(writeback_module.FeeRecordCache, "charge", counting_charge)
    stats, _ = run(oracle_genesis(**GENESES[fee]))
    invalid = stats.pop("invalid")
    assert stats["lots"] >= 40 and stats["native"] >= 30, stats
    assert stats["created"] >= 3 and stats["reverted"] >= 5 and stats["vault"] >= 20 and stats["code"] >= 5, stats
    assert any("frozen" in reason for reason in invalid), invalid
    assert sum("insufficient funds for gas" in reason for reason in invalid) >= 3, invalid
    assert counts["cached charges"] >= 30, counts


def _treasury_share_to_coinbase(monkeypatch):
    """A flush that moves one wei of the treasury's share to the coinbase."""
    pay_out_fees = writeback_module.pay_out_fees

    def broken(state, vault, treasury, coinbase, out, treasury_in, coinbase_in):
        if treasury_in:
            treasury_in, coinbase_in = treasury_in - 1, coinbase_in + 1
        return pay_out_fees(state, vault, treasury, coinbase, out, treasury_in, coinbase_in)

    monkeypatch.setattr(writeback_module, "pay_out_fees", broken)


def _stale_records_after_vault_code(monkeypatch):
    """Cached records kept after the vault's code ran (a deposit, a sweep) in the block."""
    monkeypatch.setattr(writeback_module.WriteBackExecutorMixin, "_vault_code_ran",
                        lambda self, computation: False)


@pytest.mark.parametrize("breakage", [_treasury_share_to_coinbase, _stale_records_after_vault_code],
                         ids=lambda f: f.__name__.lstrip("_"))
def test_negative_control_a_broken_write_back_is_caught(monkeypatch, breakage):
    breakage(monkeypatch)
    with pytest.raises(DesignsDiverged):
        run(oracle_genesis(**GENESES["upfront"]))
