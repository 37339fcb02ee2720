"""Benchmark 5 — block import (the validator's path): plugin vs plain py-evm.

One chain builds each block with py-evm's mining API (timestamp set BEFORE the
transactions are applied, then `mine_all`); the block is RLP-encoded. Every round, a fresh
copy of the parent database (copied outside the timed region) decodes the bytes and runs
`chain.import_block(block)`: header and transaction validation, sender recovery (coincurve),
execution with block pre/post-processing, receipts, state root, persistence. Plugin senders
were granted one lot each by the operator; both sides import blocks of the same signed
value transfers (100 txs: 100 senders x 1; 1000 txs: 200 senders x 5).

    python benchmarks/bench_import.py [--rounds 7]
"""
import statistics
import time

import rlp

from bench_common import (
    copy_chain,
    fund_by_grants,
    script_main,
    make_genesis,
    plain_chain,
    plugin_chain,
    plugin_chain_class,
    ratios,
    sender_keys,
    side_by_side,
    summary,
    transfers,
)

BLOCK_SHAPES = {100: (100, 1), 1000: (200, 5)}  # transactions -> (senders, per sender)


def build_block(base, txs, timestamp):
    """(encoded block, block class) mined on a copy of `base` at `timestamp`."""
    builder = copy_chain(base)
    builder.set_header_timestamp(timestamp)
    result, receipts, _ = builder.mine_all(txs)
    assert all(r.state_root == b"\x01" for r in receipts)
    block = result.imported_block
    return rlp.encode(block), type(block)


def import_side(base, encoded, block_class, chain_class=None):
    def run(r):
        importer = copy_chain(base, chain_class)  # untimed: a fresh validator at the parent
        start = time.perf_counter()
        block = rlp.decode(encoded, sedes=block_class)  # senders not recovered yet
        importer.import_block(block)
        seconds = time.perf_counter() - start
        assert importer.get_canonical_head().hash == block.hash
        return seconds
    return run


def run(rounds=7, shapes=None):
    shapes = BLOCK_SHAPES if shapes is None else shapes
    keys = sender_keys(max(senders for senders, _ in shapes.values()))
    addresses = [k.public_key.to_canonical_address() for k in keys]
    genesis = make_genesis(addresses)
    plugin = fund_by_grants(plugin_chain(genesis), genesis, addresses)
    plain = plain_chain(genesis)
    timestamp = plugin.get_canonical_head().timestamp + 12
    write_back_class = plugin_chain_class(genesis, write_back=True)
    cases = []
    for size, (senders, per_sender) in shapes.items():
        txs = transfers(keys[:senders], per_sender, recover=False)
        plugin_block, plugin_class = build_block(plugin, txs, timestamp)
        plain_block, plain_class = build_block(plain, txs, timestamp)
        cases.append((str(size), {
            "plugin": import_side(plugin, plugin_block, plugin_class),
            "plain": import_side(plain, plain_block, plain_class),
            # the same block imported by a validator running the write-back design
            "write_back": import_side(plugin, plugin_block, plugin_class, write_back_class),
        }))
    times = side_by_side(rounds, cases)
    out = {}
    for size in shapes:
        t = times[str(size)]
        out[str(size)] = {
            "transactions": size,
            "ratio": summary(ratios(t["plugin"], t["plain"])),
            "write_back_ratio": summary(ratios(t["write_back"], t["plain"])),
            # context only (absolute, machine-dependent):
            "plain_tx_per_s_median": round(size / statistics.median(t["plain"])),
            "plugin_tx_per_s_median": round(size / statistics.median(t["plugin"])),
        }
    return {"benchmark": "block import, plugin/plain per block", "rounds": rounds, "blocks": out}


if __name__ == "__main__":
    script_main(__doc__, run)
