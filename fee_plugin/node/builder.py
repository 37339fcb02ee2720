"""Block production from the pool: one whole block at a time.

The builder takes each sender's pending run from the pool, merges them by effective tip
(then arrival) keeping every sender's nonce order (geth's price-and-nonce order), and
executes them in one VM on the write-back design, so a block costs time linear in its
transactions (py-evm's `MiningChain.apply_transaction` re-imports the pending block on
every call instead). A transaction that turns invalid is skipped with its reason and its
sender's later transactions wait; the block gas limit and a byte cap bound the block.
Everything the block writes lands in one LevelDB batch, after `commit_hook` agreed (the
cluster's etcd append); a refused or failed block leaves the database as it was.
"""
import heapq
import logging
import time
from dataclasses import dataclass, replace
from typing import Callable, Dict, List, Optional, Tuple

import rlp
from eth.abc import BlockAPI, BlockHeaderAPI, ReceiptAPI
from eth_utils import ValidationError, encode_hex

from ..chain import build_chain
from ..genesis import Genesis
from .admission import effective_tip
from .pool import PoolTx

log = logging.getLogger("fee_plugin.node.builder")

DEFAULT_MAX_BLOCK_BYTES = 1_000_000  # fits one etcd request (1.5 MiB) with room to spare


class CommitRefused(Exception):
    """The commit hook refused the block (the cluster's append lost): nothing is written."""


@dataclass(frozen=True)
class BuiltBlock:
    block: BlockAPI
    receipts: Tuple[ReceiptAPI, ...]
    invalid: Dict[bytes, str]  # tx hash -> why it was skipped as invalid
    encoded: bytes  # the block's RLP, as stored and replicated
    source: str = "produced"  # or "imported" (a follower's verified import)
    seconds: float = 0.0  # time to build (or import) it


def order_candidates(runs: Dict[bytes, List[PoolTx]], base_fee_wei: int):
    """Yield transactions by effective tip (highest first, then arrival), each sender's
    in nonce order; `send(False)` to the generator skips the rest of that sender."""
    heap = []
    for sender, run in runs.items():
        if run:
            first = run[0]
            heap.append((-effective_tip(first.tx, base_fee_wei), first.seq, sender, 0))
    heapq.heapify(heap)
    while heap:
        _, _, sender, index = heapq.heappop(heap)
        run = runs[sender]
        keep_sender = yield run[index]
        if keep_sender is not False and index + 1 < len(run):
            nxt = run[index + 1]
            heapq.heappush(heap, (-effective_tip(nxt.tx, base_fee_wei), nxt.seq, sender, index + 1))


class BlockBuilder:
    order_candidates = staticmethod(order_candidates)  # the pending block's builder caps it in time

    def __init__(self, genesis: Genesis, db, max_block_bytes: int = DEFAULT_MAX_BLOCK_BYTES) -> None:
        self.genesis = genesis
        self.db = db
        self.chain = build_chain(genesis, db, write_back=True)
        self.max_block_bytes = max_block_bytes

    def close(self) -> None:
        """Nothing to release here (the process builder stops its child)."""

    def head(self) -> BlockHeaderAPI:
        return self.chain.get_canonical_head()

    def build(
        self,
        runs: Dict[bytes, List[PoolTx]],
        timestamp: int,
        commit_hook: Optional[Callable[[BuiltBlock], bool]] = None,
    ) -> BuiltBlock:
        """Build, seal and store the next block at `timestamp` from the pool's runs."""
        parent = self.head()
        if timestamp <= parent.timestamp:
            raise ValueError(f"block time {timestamp} not after its parent's {parent.timestamp}")
        started = time.perf_counter()
        with self.db.block_batch():
            built = self._execute(parent, runs, timestamp)
            built = replace(built, seconds=time.perf_counter() - started)
            if commit_hook is not None and not commit_hook(built):
                raise CommitRefused(f"block {built.block.number} refused by the commit hook")
        return built

    def _execute(self, parent: BlockHeaderAPI, runs, timestamp: int) -> BuiltBlock:
        chain = self.chain
        header = chain.create_header_from_parent(parent, timestamp=timestamp)
        vm = chain.get_vm(header)
        gas_limit = header.gas_limit
        applied, receipts, invalid = [], [], {}
        size = 600  # header and list overhead
        order = self.order_candidates(runs, header.base_fee_per_gas)
        keep = None
        while True:
            try:
                entry = order.send(keep)
            except StopIteration:
                break
            tx = entry.tx
            keep = True
            if header.gas_used + tx.gas > gas_limit or size + len(entry.raw) > self.max_block_bytes:
                keep = False  # does not fit: this sender waits for the next block
                continue
            try:
                receipt, _ = vm.apply_transaction(header, tx)
            except ValidationError as err:
                # Raised by validation, before the transaction changed anything.
                invalid[entry.hash] = str(err)
                log.info("skipped transaction %s: %s", encode_hex(entry.hash), err)
                keep = False
                continue
            header = vm.add_receipt_to_header(header, receipt)
            header = vm.increment_blob_gas_used(header, tx)
            applied.append(tx)
            receipts.append(receipt)
            size += len(entry.raw)
        block = vm.set_block_transactions_and_withdrawals(
            vm.get_block(), header, applied, receipts
        )
        block = vm.mine_block(block).block
        chain.chaindb.persist_block(block)
        return BuiltBlock(block, tuple(receipts), invalid, rlp.encode(block))
