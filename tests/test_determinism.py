"""Consensus determinism: independent nodes agree on every block; tampered fee accounting is
rejected by importers.

One chain produces blocks of random mixed traffic; two fresh chains (one on LevelDB, closed
and reopened half-way) import them block by block and must agree on every state root,
receipt root and FeeCharged log. The traffic is pseudo-random with a fixed seed (a test
input, not consensus code).
"""
import contextlib
import os
import random

import pytest
from eth_utils import ValidationError

import fee_plugin.executor as executor_module
import fee_plugin.vault as vault_module
from fee_plugin import FeeValidationError, build_chain
from fee_plugin.node.leveldb import LevelDB
from fee_plugin.lots import lot_available
from fee_plugin.vault import FEE_CHARGED_TOPIC

from .support.chain import (
    ETHER,
    GENESIS_TIME,
    OPERATOR_KEY,
    USER_KEYS,
    VAULT,
    address,
    calldata,
    make_genesis,
    sign,
)

pytestmark = pytest.mark.slow

BLOCKS = 1000  # DETERMINISM_BLOCKS=N overrides (e.g. 10000 for a long run by hand)
SINK = b"\x42" * 20


def _random_block(chain, rng, t):
    """Apply 0-4 random transactions at time t; invalid ones are dropped as a producer would."""
    chain.set_header_timestamp(t)
    for _ in range(rng.randrange(0, 5)):
        key = rng.choice(USER_KEYS[:4])
        kind = rng.random()
        if kind < 0.25:
            tx = sign(chain, key, VAULT, value=rng.randrange(10**15, ETHER), data=calldata("deposit"), gas=300_000)
        elif kind < 0.3:
            tx = sign(chain, OPERATOR_KEY, VAULT, value=ETHER // 10, gas=300_000,
                      data=calldata("grant", address(key), rng.randrange(10, 2000)))
        elif kind < 0.35:
            tx = sign(chain, OPERATOR_KEY, VAULT, data=calldata("sweepExpired", address(key)), gas=300_000)
        elif kind < 0.45:
            tx = sign(chain, key, VAULT, data=b"\x99", gas=rng.randrange(30_000, 80_000))  # reverts, still pays
        else:
            tx = sign(chain, key, SINK, value=rng.randrange(1, 1000), gas=rng.randrange(21_000, 60_000),
                      kind=rng.choice(["legacy", "access_list", "dynamic"]))
        try:
            chain.apply_transaction(tx)
        except ValidationError:
            pass
    return chain.mine_block()


def _fee_logs(chain, block):
    return [
        (log.topics, log.data)
        for receipt in block.get_receipts(chain.chaindb)
        for log in receipt.logs
        if log.address == VAULT and log.topics[0] == FEE_CHARGED_TOPIC
    ]


def test_three_nodes_agree_on_every_block(tmp_path):
    blocks = int(os.environ.get("DETERMINISM_BLOCKS", BLOCKS))
    genesis = make_genesis()
    producer = build_chain(genesis)
    memory_importer = build_chain(genesis)
    path = str(tmp_path / "importer")
    disk_db = LevelDB(path)
    disk_importer = build_chain(genesis, disk_db)
    rng = random.Random(20261125)
    t = GENESIS_TIME
    fee_logs_seen = 0
    for number in range(1, blocks + 1):
        t += rng.choice([1, 2, 12, 60, 400])
        block = _random_block(producer, rng, t)
        for importer in (memory_importer, disk_importer):
            with disk_db.block_batch() if importer is disk_importer else contextlib.nullcontext():
                importer.import_block(block)
            assert importer.get_canonical_head() == block.header  # state and receipt roots too
        logs = _fee_logs(producer, block)
        assert _fee_logs(memory_importer, block) == logs == _fee_logs(disk_importer, block)
        fee_logs_seen += len(logs)
        if number == blocks // 2:  # restart the persistent node mid-way
            disk_db.close()
            disk_db = LevelDB(path)
            disk_importer = build_chain(genesis, disk_db)
            assert disk_importer.get_canonical_head() == block.header
    disk_db.close()
    assert fee_logs_seen > blocks // 4, "the traffic must exercise lot-paid transactions"


def _tamper_charge_plus_one_wei(monkeypatch):
    original = vault_module.plan_charge

    def charge(account, fee_wei, *args):
        return original(account, fee_wei + 1, *args)

    monkeypatch.setattr(executor_module, "plan_charge", charge)


def _tamper_skip_a_lot(monkeypatch):
    def allocate(lots, fee_wei, t, policy):
        """Latest expiry first: skips the lot the rules say must pay first (the fee below
        spans both lots, so the charge walks both)."""
        taken, remaining = [], fee_wei
        for lot in sorted(lots, key=lambda lot: -lot.expiry):
            take = min(lot_available(lot, t, policy), remaining)
            if take:
                taken.append((lot.slot, take))
                remaining -= take
        return tuple(taken)

    monkeypatch.setattr(vault_module, "allocate_charge", allocate)


def _tamper_drop_a_log(monkeypatch):
    original = executor_module.charge_logs

    def logs(*args):
        return original(*args)[:-1]

    monkeypatch.setattr(executor_module, "charge_logs", logs)


@pytest.mark.parametrize(
    "tamper, mismatch",
    [(_tamper_charge_plus_one_wei, "state_root"), (_tamper_skip_a_lot, "state_root"), (_tamper_drop_a_log, "receipt_root")],
    ids=["charge changed by 1 wei", "a lot skipped", "a log dropped"],
)
def test_tampered_fee_accounting_is_rejected_by_importers(monkeypatch, tamper, mismatch):
    genesis = make_genesis(consumption="upfront")
    producer, importer = build_chain(genesis), build_chain(genesis)
    t = GENESIS_TIME + 10
    # Two lots for Alice with different expiries, so the charge order matters; the grant's
    # lot is smaller than the fee below, so that fee draws both.
    setup = [
        sign(producer, USER_KEYS[0], VAULT, value=ETHER, data=calldata("deposit"), gas=300_000),
        sign(producer, OPERATOR_KEY, VAULT, value=10**15, data=calldata("grant", address(USER_KEYS[0]), 50), gas=300_000),
    ]
    producer.set_header_timestamp(t)
    for tx in setup:
        producer.apply_transaction(tx)
    honest = producer.mine_block()
    importer.import_block(honest)
    with monkeypatch.context() as patch:
        tamper(patch)
        producer.set_header_timestamp(t + 5)  # calldata floor: 21,000 + 40 x 30,000 gas, ~1.8e15 wei
        producer.apply_transaction(sign(producer, USER_KEYS[0], SINK, value=1, data=b"\x01" * 30_000,
                                        gas=1_300_000))
        forged = producer.mine_block()
    with pytest.raises(ValidationError, match=mismatch):
        importer.import_block(forged)
    assert importer.get_canonical_head() == honest.header
    with pytest.raises(FeeValidationError):  # and the honest chain still enforces the rules
        importer.header = importer.header.copy(timestamp=t + 6)
        importer.apply_transaction(sign(importer, USER_KEYS[1], SINK, value=1, gas=21_000))
