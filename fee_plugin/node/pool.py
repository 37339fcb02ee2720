"""The transaction pool: per-sender pending (executable) and queued (future) transactions.

geth's txpool is the model. A sender's pending list is the gap-free run of its
transactions from its account nonce whose costs all fit: lot-paid transactions reserve
their maximum fee from the prepaid balance available at the next block's time (so one
block can never include more than the lots can pay), natively paid ones reserve
value + gas x max fee from the ETH balance. Who pays is decided by the executor's own rule
(`fee_plugin.payment.choose_payment`). Everything else waits in the queue and is promoted
when the gap fills or the funds are there; queued transactions expire after a lifetime.
Replacement needs both fee caps raised by the price bump; limits per sender and in total,
with the cheapest evicted when full. Accepted transactions are journaled (journal.py).
"""
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Tuple

from eth.abc import SignedTransactionAPI

from ..payment import (
    FeeRefusal,
    FeeValidationError,
    Payment,
    choose_payment,
    max_fee_wei,
)
from .admission import (
    HeadContext,
    TxRejected,
    bumped,
    check_sender,
    effective_tip,
    native_cost_wei,
)
from .journal import TxJournal

log = logging.getLogger("fee_plugin.node.pool")


@dataclass(frozen=True)
class PoolConfig:
    account_slots: int = 128  # pending per sender (geth: 16; a burst needs more here)
    account_queue: int = 64  # queued per sender
    global_slots: int = 8192  # pending in total
    global_queue: int = 2048  # queued in total
    price_bump_percent: int = 10
    max_tx_bytes: int = 128 * 1024
    queued_lifetime_seconds: float = 3 * 3600


@dataclass(eq=False)
class PoolTx:
    tx: SignedTransactionAPI
    raw: bytes
    seq: int  # arrival order: ties in price go to the earlier transaction
    added_at: float  # wall time (pool bookkeeping only, never consensus)
    hash: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.hash = self.tx.hash

    @property
    def sender(self) -> bytes:
        return self.tx.sender

    @property
    def nonce(self) -> int:
        return self.tx.nonce


class TxPool:
    def __init__(
        self,
        config: PoolConfig,
        context: HeadContext,
        journal: Optional[TxJournal] = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.fee = context.genesis.fee
        self._ctx = context
        self._journal = journal
        self._now = now
        self._lock = threading.RLock()
        self._txs: Dict[bytes, PoolTx] = {}
        self._by_sender: Dict[bytes, Dict[int, PoolTx]] = {}
        self._pending: Dict[bytes, List[PoolTx]] = {}
        self._reserved: Dict[bytes, Tuple[int, int]] = {}  # sender -> (lots wei, ETH wei) of its run
        self._pending_count = 0
        self._seq = 0
        self.work = threading.Event()  # set whenever something became executable
        self.rejected: Dict[str, int] = {}  # reason -> count (metrics)

    # -- admission ----------------------------------------------------------------------

    def add(self, tx: SignedTransactionAPI, raw: bytes) -> bytes:
        """Admit `tx` or raise TxRejected; returns its hash once it is durable."""
        with self._lock:
            try:
                entry = self._admit(tx, raw)
            except TxRejected as err:
                self.count_rejection(err)
                raise
            seq = self._journal.append(raw) if self._journal is not None else 0
        if self._journal is not None:
            self._journal.sync(seq)
        return entry.hash

    def count_rejection(self, err: TxRejected) -> None:
        with self._lock:
            self.rejected[err.reason] = self.rejected.get(err.reason, 0) + 1

    def _admit(self, tx: SignedTransactionAPI, raw: bytes) -> PoolTx:
        if tx.hash in self._txs:
            raise TxRejected("already known", reason="known")
        sender = tx.sender
        state = self._ctx.sender(sender)
        check_sender(tx, state)
        txs = self._by_sender.setdefault(sender, {})
        old = txs.get(tx.nonce)
        bump = self.config.price_bump_percent
        if old is not None and not (
            bumped(old.tx.max_fee_per_gas, tx.max_fee_per_gas, bump)
            and bumped(old.tx.max_priority_fee_per_gas, tx.max_priority_fee_per_gas, bump)
        ):
            raise TxRejected(
                f"replacement transaction underpriced: both fee caps must rise by {bump} % "
                f"(max fee {old.tx.max_fee_per_gas}, tip {old.tx.max_priority_fee_per_gas})",
                reason="underpriced")
        limit = self.config.account_slots + self.config.account_queue
        if old is None and len(txs) >= limit:
            raise TxRejected(f"account limit exceeded: {len(txs)} transactions of this sender "
                             f"in the pool, at most {limit}", reason="limit")
        self._check_alone(tx, state.account, state.balance_wei)
        self._seq += 1
        entry = PoolTx(tx, raw, self._seq, self._now())
        self._put(entry, old)
        # A new nonce can only extend the sender's run; a replacement may change it all.
        pending, blocker = self._reclassify(sender, restart=old is not None)
        if entry.nonce == state.nonce + len(pending):  # the first one that does not fit
            self._undo(entry, old)
            raise blocker
        if self._queued_count() > self.config.global_queue or len(self._txs) > (
            self.config.global_slots + self.config.global_queue
        ):
            self._make_room(entry, old)
        if entry in pending:
            self.work.set()
        if old is not None:
            log.info("dropped transaction 0x%s: replaced by 0x%s (both fee caps raised by %d %%)",
                     old.hash.hex(), entry.hash.hex(), bump)
        return entry

    def _check_alone(self, tx: SignedTransactionAPI, account, balance_wei: int) -> None:
        """Whether the transaction could be paid on its own (queued ones too)."""
        payment = self._payment(tx, account, max_fee_wei(tx), (), 0)
        cost = native_cost_wei(tx) if payment is Payment.NATIVE else tx.value
        if cost > balance_wei:
            what = "gas * price + value" if payment is Payment.NATIVE else "transfer"
            raise TxRejected(f"insufficient funds for {what}: balance {balance_wei}, "
                             f"tx cost {cost}, overshot {cost - balance_wei}", reason="funds")

    def _payment(self, tx, account, required_wei: int, reserved: Tuple, reserved_wei: int) -> Payment:
        try:
            return choose_payment(self.fee, tx, account, self._ctx.next_timestamp(), required_wei)
        except FeeRefusal as err:
            more = (f" ({reserved_wei} wei of it reserved by {len(reserved)} pending transactions "
                    "of this sender)" if reserved else "")
            data = {"available": str(err.available_wei), "required": str(err.required_wei),
                    "releasedAt": err.released_at}
            raise TxRejected(f"{err}{more}", data, reason="fee") from None
        except FeeValidationError as err:
            raise TxRejected(str(err), reason="fee") from None

    # -- pending / queued -----------------------------------------------------------------

    def _reclassify(self, sender: bytes, restart: bool = True) -> Tuple[List[PoolTx], Optional[TxRejected]]:
        """Recompute `sender`'s pending run (or, without `restart`, try to extend it);
        returns the run and why the next transaction is not pending."""
        state = self._ctx.sender(sender)
        txs = self._by_sender.get(sender, {})
        previous = self._pending.get(sender, [])
        if restart or not previous:
            pending: List[PoolTx] = []
            lots_wei = eth_wei = 0
        else:
            pending = list(previous)
            lots_wei, eth_wei = self._reserved[sender]
        blocker: Optional[TxRejected] = None
        nonce = state.nonce + len(pending)
        while nonce in txs and blocker is None:
            entry = txs[nonce]
            tx = entry.tx
            if len(pending) >= self.config.account_slots:
                blocker = TxRejected(f"account limit exceeded: {len(pending)} pending transactions "
                                     "of this sender", reason="limit")
                break
            try:
                payment = self._payment(tx, state.account, lots_wei + max_fee_wei(tx), pending, lots_wei)
            except TxRejected as err:
                blocker = err
                break
            if payment is Payment.LOTS:
                lots_wei += max_fee_wei(tx)
                eth_wei += tx.value
            else:
                eth_wei += native_cost_wei(tx)
            if eth_wei > state.balance_wei:
                blocker = TxRejected(f"insufficient funds for gas * price + value: balance "
                                     f"{state.balance_wei}, cost of pending transactions {eth_wei}",
                                     reason="funds")
                break
            pending.append(entry)
            nonce += 1
        self._pending_count += len(pending) - len(previous)
        if pending:
            self._pending[sender] = pending
            self._reserved[sender] = (lots_wei, eth_wei)
        else:
            self._pending.pop(sender, None)
            self._reserved.pop(sender, None)
        return pending, blocker

    def _queued_count(self) -> int:
        return len(self._txs) - self._pending_count

    def _put(self, entry: PoolTx, replaced: Optional[PoolTx]) -> None:
        if replaced is not None:
            del self._txs[replaced.hash]
        self._txs[entry.hash] = entry
        self._by_sender.setdefault(entry.sender, {})[entry.nonce] = entry

    def _remove(self, entry: PoolTx) -> None:
        del self._txs[entry.hash]
        txs = self._by_sender[entry.sender]
        del txs[entry.nonce]
        if not txs:
            del self._by_sender[entry.sender]

    def _drop(self, entry: PoolTx, reason: str) -> None:
        log.info("dropped transaction 0x%s: %s", entry.hash.hex(), reason)
        self._remove(entry)

    def _undo(self, entry: PoolTx, replaced: Optional[PoolTx]) -> None:
        """Take a refused newcomer out again; the transaction it was replacing stays (its
        hash was returned: it is never lost to a refused replacement)."""
        self._remove(entry)
        if replaced is not None:
            self._put(replaced, None)
        self._reclassify(entry.sender)

    def _make_room(self, newcomer: PoolTx, replaced: Optional[PoolTx]) -> None:
        """Evict the cheapest queued transaction, else the cheapest pending tail."""
        base_fee = self._ctx.base_fee_wei
        queued_full = self._queued_count() > self.config.global_queue
        candidates = []
        for sender, txs in self._by_sender.items():
            pending = self._pending.get(sender, [])
            tail = pending[-1] if pending else None
            for entry in txs.values():
                is_queued = not pending or entry.nonce > pending[-1].nonce
                if is_queued or (entry is tail and not queued_full):
                    candidates.append((effective_tip(entry.tx, base_fee), -entry.seq, entry))
        victim = min(candidates, key=lambda c: c[:2])[2]
        if victim is newcomer:
            self._undo(newcomer, replaced)
            raise TxRejected("txpool is full: transaction underpriced (cheaper than everything in "
                             "the pool)", reason="full")
        self._drop(victim, "evicted: the pool is full and a better-paying transaction arrived")
        self._reclassify(victim.sender)

    # -- new head -------------------------------------------------------------------------

    def set_head(self, context: HeadContext, included: Iterable[bytes] = (),
                 invalid: Mapping[bytes, str] = ()) -> None:
        """A block was committed: drop what it mined or made invalid, promote and demote."""
        included = set(included)
        with self._lock:
            self._ctx = context
            for tx_hash, reason in dict(invalid).items():
                entry = self._txs.get(tx_hash)
                if entry is not None:
                    self._drop(entry, f"invalid at block {context.header.block_number}: {reason}")
            deadline = self._now() - self.config.queued_lifetime_seconds
            for sender in sorted(set(self._by_sender) | set(self._pending)):
                state = context.sender(sender)
                for entry in list(self._by_sender.get(sender, {}).values()):
                    if entry.nonce < state.nonce:
                        if entry.hash in included:
                            self._remove(entry)
                        else:
                            self._drop(entry, f"nonce too low at block {context.header.block_number}")
                pending, _ = self._reclassify(sender)
                stale = [e for e in self._by_sender.get(sender, {}).values()
                         if e not in pending and e.added_at < deadline]
                for entry in stale:
                    self._drop(entry, "queued for longer than the pool's lifetime")
                if stale:
                    self._reclassify(sender)
            if self._journal is not None and self._journal.records > 2 * len(self._txs) + 256:
                self._journal.rewrite([e.raw for e in sorted(self._txs.values(), key=lambda e: e.seq)])
            if self._pending_count:
                self.work.set()

    def restore(self, raws: Iterable[bytes], decode: Callable[[bytes], SignedTransactionAPI]) -> int:
        """Re-admit journaled transactions after a restart; returns how many were kept."""
        with self._lock:
            for raw in raws:
                try:
                    tx = decode(raw)
                except Exception as err:  # a record that is not a transaction any more
                    log.warning("journaled record dropped at restart: %s", err)
                    continue
                try:
                    self._admit(tx, raw)
                except TxRejected as err:
                    log.info("journaled transaction 0x%s dropped at restart: %s",
                             tx.hash.hex(), err.message)
                except Exception as err:
                    log.warning("journaled transaction 0x%s dropped at restart: %s", tx.hash.hex(), err)
            if self._journal is not None:
                self._journal.rewrite([e.raw for e in sorted(self._txs.values(), key=lambda e: e.seq)])
            return len(self._txs)

    # -- reads ----------------------------------------------------------------------------

    @property
    def context(self) -> HeadContext:
        return self._ctx

    def candidates(self) -> Dict[bytes, List[PoolTx]]:
        """Each sender's pending run, in nonce order (a copy for the block builder)."""
        with self._lock:
            self.work.clear()
            return {sender: list(run) for sender, run in self._pending.items()}

    def get(self, tx_hash: bytes) -> Optional[PoolTx]:
        with self._lock:
            return self._txs.get(tx_hash)

    def next_nonce(self, sender: bytes) -> int:
        """The nonce a new transaction of `sender` should carry ("pending" count)."""
        with self._lock:
            return self._ctx.sender(sender).nonce + len(self._pending.get(sender, ()))

    def content(self) -> Tuple[Dict[bytes, List[PoolTx]], Dict[bytes, List[PoolTx]]]:
        """(pending, queued) by sender, each in nonce order."""
        with self._lock:
            pending = {s: list(run) for s, run in self._pending.items()}
            queued = {}
            for sender, txs in self._by_sender.items():
                done = {e.nonce for e in pending.get(sender, ())}
                rest = [txs[n] for n in sorted(txs) if n not in done]
                if rest:
                    queued[sender] = rest
            return pending, queued

    def stats(self) -> Tuple[int, int]:
        """(pending, queued) counts."""
        with self._lock:
            return self._pending_count, self._queued_count()
