"""Crash safety: SIGKILL a LevelDB-backed importer mid-import, many times.

Every restart must open at a committed block of the producer's chain, with that block's
state root readable and every fee account's accounting identity exact (no half-applied
charge), and must be able to import the rest.
"""
import pytest
import os
import random
import signal
import subprocess
import sys
import textwrap

import rlp

from fee_plugin import build_chain, fee_account
from fee_plugin.node.leveldb import LevelDB

from .support.chain import (
    ETHER,
    GENESIS_TIME,
    REPO,
    USER_KEYS,
    VAULT,
    address,
    calldata,
    make_genesis,
    mine,
    sign,
)

pytestmark = pytest.mark.slow

BLOCKS = 25
KILLS = int(os.environ.get("CRASH_KILLS", 6))

IMPORTER = textwrap.dedent(
    """
    import sys
    import rlp
    sys.path.insert(0, {repo!r})
    from tests.support.chain import make_genesis
    from fee_plugin import build_chain
    from fee_plugin.node.leveldb import LevelDB

    genesis = make_genesis(consumption="upfront")
    db = LevelDB({path!r})
    chain = build_chain(genesis, db)
    block_class = chain.get_vm().get_block_class()
    encoded = open({blocks!r}, "rb").read()
    blocks = [rlp.decode(b, sedes=block_class) for b in rlp.decode(encoded)]
    start = chain.get_canonical_head().block_number
    for block in blocks[start:]:
        print("importing", block.number, flush=True)
        with db.block_batch():
            chain.import_block(block)
        print("committed", block.number, flush=True)
    print("done", flush=True)
    """
)


def _produce(tmp_path):
    """A producer chain with lot-paid traffic in every block; blocks saved as RLP."""
    genesis = make_genesis(consumption="upfront")
    producer = build_chain(genesis)
    keys = USER_KEYS[:3]
    mine(producer, [sign(producer, k, VAULT, value=ETHER, data=calldata("deposit"), gas=300_000) for k in keys],
         GENESIS_TIME + 1)
    for n in range(2, BLOCKS + 1):
        mine(producer, [sign(producer, k, b"\x42" * 20, value=n, gas=21_000) for k in keys], GENESIS_TIME + n)
    blocks = [producer.get_canonical_block_by_number(n) for n in range(1, BLOCKS + 1)]
    path = tmp_path / "blocks.rlp"
    path.write_bytes(rlp.encode([rlp.encode(b) for b in blocks]))
    return producer, blocks, path


def _check_reopened(db_path, producer, keys):
    db = LevelDB(db_path)
    try:
        chain = build_chain(make_genesis(consumption="upfront"), db)
        head = chain.get_canonical_head()
        assert head == producer.get_canonical_block_header_by_number(head.block_number)  # a committed block
        for key in keys:
            acct = fee_account(chain, address(key))
            assert acct.deposited_wei == acct.charged_wei + acct.expired_wei + acct.remaining_wei
        state = chain.get_vm(head).state
        assert state.get_balance(VAULT) == sum(fee_account(chain, address(k)).remaining_wei for k in keys)
        return head.block_number
    finally:
        db.close()


def test_sigkill_during_import_always_reopens_at_a_committed_block(tmp_path):
    producer, blocks, blocks_path = _produce(tmp_path)
    db_path = str(tmp_path / "importer")
    script = IMPORTER.format(repo=str(REPO), path=db_path, blocks=str(blocks_path))
    rng = random.Random(7)
    heads = []
    for _ in range(KILLS):
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        # Kill right after it announces an import (inside or just before the write batch),
        # after a random number of blocks.
        target = rng.randrange(1, 6)
        seen = 0
        for line in child.stdout:
            if line.startswith("importing"):
                seen += 1
                if seen == target:
                    os.kill(child.pid, signal.SIGKILL)
                    break
            if line.startswith("done"):
                break
        child.wait(timeout=60)
        child.stdout.close()
        heads.append(_check_reopened(db_path, producer, USER_KEYS[:3]))
    assert heads == sorted(heads) and heads[-1] < BLOCKS  # progress, and the kills landed mid-way
    # The survivor imports the rest and ends on the producer's head.
    finish = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert finish.returncode == 0 and "done" in finish.stdout, finish.stderr
    assert _check_reopened(db_path, producer, USER_KEYS[:3]) == BLOCKS
