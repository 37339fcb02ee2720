"""Benchmark 6 — attribution: what the write-back design's remaining overhead is made of.

Counterfactual sides, measured side by side with plain py-evm and the real write-back chain
in the same rounds (same blocks, same parent state). Each side removes one part of the
plugin's work and nothing else, so the difference to the real side is what that part costs:

- *vault reads free*: the fee records are served from a memo of exact earlier reads of the
  same parent state (no storage-trie walk); receipts and state root stay exactly the real ones
  (checked).
- *vault writes skipped*: the flush stores no fee record (the vault's storage trie is left
  as it was; the balance moves still happen). The state root is wrong — a measurement device
  only — but receipts are the real ones (checked).
- *both*: what is left is the hook's own code (validation, lot math, logs, balance moves),
  net of the stock work it replaces.
- *vault trie nodes cached*: the lever left inside the trie: the vault's storage trie walks
  decoded nodes from a content-addressed memo (node hash -> decoded node, so it cannot go
  stale) kept across blocks. Exact: same receipts and state root (checked).

The workloads are benchmark 1's value transfers (100 senders x 5, 500 distinct senders) and
benchmark 4's 64 live lots per sender (100 x 5), next to 1 lot. Nothing here is a design
of the plugin: the counterfactual patches exist only in this file and undo themselves.

    python benchmarks/bench_attribution.py [--rounds 7]
"""
import contextlib

import eth.db.storage as storage_module
import trie.hexary as hexary
from eth.db.batch import BatchDB
from trie.utils.nodes import decode_node

import bench_overhead
import fee_plugin.executor as executor_module
import fee_plugin.writeback as writeback_module
from bench_common import (
    VAULT,
    make_genesis,
    open_chain,
    plain_chain,
    plugin_chain,
    plugin_chain_class,
    ratios,
    script_main,
    sender_keys,
    side_by_side,
    summary,
    time_block_with_root,
    transfers,
    uniform_lots,
)

SIDES = ("plain", "write_back", "reads_free", "writes_skipped", "both_free", "nodes_cached")


@contextlib.contextmanager
def _patched(module, name, value):
    original = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, original)


def reads_free(memo):
    """Fee records from `memo` (owner -> account as read from this same parent state)."""
    real = executor_module.load_account

    def load_account(state, vault, owner, t=None):
        if (owner, t) not in memo:
            memo[owner, t] = real(state, vault, owner, t)
        return memo[owner, t]

    return _patched(executor_module, "load_account", load_account)


def writes_skipped():
    return _patched(writeback_module, "write_account", lambda state, vault, account: account.clean())


class _NodeMemoTrie(hexary.HexaryTrie):
    """A HexaryTrie whose node reads come from a content-addressed memo of decoded nodes.
    The trie mutates nodes it gets, so every read hands out a fresh list."""

    memo = None  # set per side

    def get_node(self, node_hash):
        if node_hash == hexary.BLANK_NODE or node_hash == hexary.BLANK_NODE_HASH:
            return hexary.BLANK_NODE
        encoded = node_hash if len(node_hash) < 32 else self.db[node_hash]
        node = self.memo.get(encoded)
        if node is None:
            node = self.memo[encoded] = decode_node(encoded)
        return list(node) if isinstance(node, list) else node


@contextlib.contextmanager
def vault_nodes_cached(memo):
    """The vault's storage trie (only the vault's) reads nodes through `memo`."""
    lookup = storage_module.StorageLookup
    real_read, real_write = lookup._get_read_trie, lookup._get_write_trie
    trie_class = type("VaultNodeMemoTrie", (_NodeMemoTrie,), {"memo": memo})

    def read_trie(self):
        if self._address != VAULT or self._write_trie is not None:
            return real_read(self)
        return trie_class(self._db, root_hash=self._starting_root_hash)

    def write_trie(self):
        if self._address != VAULT:
            return real_write(self)
        if self._trie_nodes_batch is None:
            self._trie_nodes_batch = BatchDB(self._db, read_through_deletes=True)
        if self._write_trie is None:
            self._write_trie = trie_class(
                self._trie_nodes_batch, root_hash=self._starting_root_hash, prune=True
            )
        return self._write_trie

    lookup._get_read_trie, lookup._get_write_trie = read_trie, write_trie
    try:
        yield
    finally:
        lookup._get_read_trie, lookup._get_write_trie = real_read, real_write


def sides(plain, write_back, txs, outcomes):
    """The six sides of one case; `outcomes[side]` keeps (receipts, root) of each round."""
    read_memo, both_memo, node_memo = {}, {}, {}
    contexts = {
        "plain": (plain, contextlib.nullcontext),
        "write_back": (write_back, contextlib.nullcontext),
        "reads_free": (write_back, lambda: reads_free(read_memo)),
        "writes_skipped": (write_back, writes_skipped),
        "both_free": (write_back, lambda: _both(both_memo)),
        "nodes_cached": (write_back, lambda: vault_nodes_cached(node_memo)),
    }

    def side(name):
        chain, context = contexts[name]

        def run(r):
            with context():
                seconds, receipts, root = time_block_with_root(chain, txs, chain.header.timestamp + 10 + r)
            outcomes.setdefault(name, {})[r] = (receipts, root)
            return seconds

        return run

    return {name: side(name) for name in SIDES}


@contextlib.contextmanager
def _both(memo):
    with reads_free(memo), writes_skipped():
        yield


def check_outcomes(outcomes):
    """The exact counterfactuals give the real block; the write-skipping ones the real
    receipts (their roots differ by construction)."""
    for r, (receipts, root) in outcomes["write_back"].items():
        for name in ("reads_free", "nodes_cached"):
            assert outcomes[name][r] == (receipts, root), f"{name} changed the block"
        for name in ("writes_skipped", "both_free"):
            assert outcomes[name][r][0] == receipts, f"{name} changed the receipts"
            assert outcomes[name][r][1] != root, f"{name} did not skip the writes"


def lot_chains(senders, lot_counts, per_sender):
    keys = sender_keys(senders)
    owners = [k.public_key.to_canonical_address() for k in keys]
    genesis = make_genesis(owners, max_live_lots=max(64, max(lot_counts)))
    plain = plain_chain(genesis, fast=True)
    txs = transfers(keys, per_sender)
    for count in lot_counts:
        plugin = plugin_chain(genesis, {o: uniform_lots(count) for o in owners}, fast=True)
        write_back = open_chain(plugin, plugin_chain_class(genesis, write_back=True))
        yield f"value transfers, {senders} senders x {per_sender}, {count} lot(s) each", plain, write_back, txs


def run(rounds=7, senders=500, repeat=(100, 5), distinct=500, lot_counts=(1, 64), lot_senders=100):
    genesis, plugin, plain, workloads = bench_overhead.setup(senders, repeat, distinct, mix=(1, 1))
    write_back = open_chain(plugin, plugin_chain_class(genesis, write_back=True))
    chosen = list(workloads.items())[:2]  # the two transfer workloads
    cases, all_outcomes, sizes = [], {}, {}
    for name, txs in chosen:
        cases.append((name, sides(plain, write_back, txs, all_outcomes.setdefault(name, {}))))
        sizes[name] = len(txs)
    for name, lot_plain, lot_write_back, txs in lot_chains(lot_senders, lot_counts, repeat[1]):
        cases.append((name, sides(lot_plain, lot_write_back, txs, all_outcomes.setdefault(name, {}))))
        sizes[name] = len(txs)
    times = side_by_side(rounds, cases)
    for outcomes in all_outcomes.values():
        check_outcomes(outcomes)
    result = {
        "benchmark": "attribution: the write-back design's overhead, part by part (counterfactual)",
        "rounds": rounds,
        "cases": {},
    }
    for name, _ in cases:
        t = times[name]
        plain_ratio = {side: ratios(t[side], t["plain"]) for side in SIDES if side != "plain"}
        overhead = [w - 1 for w in plain_ratio["write_back"]]
        result["cases"][name] = {
            "transactions": sizes[name],
            "ratio": {side: summary(values) for side, values in plain_ratio.items()},
            # Shares of plain's block time, same round: what each part costs.
            "vault_reads": summary([w - f for w, f in zip(plain_ratio["write_back"],
                                                          plain_ratio["reads_free"])]),
            "vault_writes": summary([w - f for w, f in zip(plain_ratio["write_back"],
                                                           plain_ratio["writes_skipped"])]),
            "hook_code_net": summary([f - 1 for f in plain_ratio["both_free"]]),
            "overhead": summary(overhead),
        }
    return result


if __name__ == "__main__":
    script_main(__doc__, run)
