"""Per-block write-back of fee records: the fast design, mixed in for whole blocks.

The per-transaction design (executor.FeeExecutorMixin) stores every charge at once: head0,
the lot words drawn and three balance moves per transaction. Here charges of plain
transactions (no EVM code runs) are kept in memory for the block and stored once, at the
first point anything could observe them: before a transaction that runs code or touches
the vault, treasury or coinbase, before block post-processing and withdrawals, and before
any state root. The final storage words and balances are exactly those of the simple
design, which stays the oracle (tests/test_writeback.py builds the same blocks both ways).

The cache is journaled with the state: a snapshot records the journal length, a revert
undoes back to it, `lock_changes` (a new transaction starts) forgets the journal, as the
state does. ../shared/notes/performance.md lists the pitfalls this follows.
"""
from typing import Dict, List, Tuple

from eth.abc import ComputationAPI, SignedTransactionAPI
from eth.constants import CREATE_CONTRACT_ADDRESS
from eth_typing import Address

from .lots import require
from .payment import Payment
from .vault import FeeAccount, pay_out_fees, write_account

SET_CODE_TX_TYPE = 4  # EIP-7702: authorizations change code before the call
PRECOMPILE_LIMIT = 0x100  # addresses at or below may run precompiles, present or future

_Pending = Tuple[int, int, int, int]  # vault out, treasury in, coinbase in, charges


class FeeRecordCache:
    """Records by owner, each carrying the words the state holds (FeeAccount.stored), so
    a flush writes exactly what changed, plus the block's pending balance moves."""

    def __init__(self) -> None:
        self._current: Dict[Address, FeeAccount] = {}
        self._pending: _Pending = (0, 0, 0, 0)
        self._journal: List[tuple] = []
        self._marks: Dict[object, int] = {}

    def get(self, owner: Address):
        return self._current.get(owner)

    def load(self, owner: Address, account: FeeAccount) -> None:
        """Remember an account just read from the state (nothing pending for it)."""
        require(owner not in self._current, owner)
        self._journal.append(("load", owner))
        self._current[owner] = account

    @property
    def vault_out_wei(self) -> int:
        return self._pending[0]

    @property
    def dirty(self) -> bool:
        return self._pending[3] > 0

    def charge(
        self, after: FeeAccount, vault_out_wei: int, treasury_in_wei: int, coinbase_in_wei: int
    ) -> None:
        owner = after.owner
        require(owner in self._current, owner)
        self._journal.append(("charge", owner, self._current[owner], self._pending))
        self._current[owner] = after
        out, treasury, coinbase, charges = self._pending
        self._pending = (
            out + vault_out_wei,
            treasury + treasury_in_wei,
            coinbase + coinbase_in_wei,
            charges + 1,
        )
        require(self._pending[0] == self._pending[1] + self._pending[2], self._pending)

    def flush(
        self, state, vault: Address, treasury: Address, coinbase: Address, keep: bool = False
    ) -> None:
        """Store every pending record and balance move. Then forget everything cached, or
        with `keep` keep the records as clean entries: the caller then owes `forget_all`
        or `replace` once the transaction that follows has shown what it changed."""
        self._journal.append(("restore", self._current, self._pending))
        if self.dirty:
            stored = {owner: write_account(state, vault, self._current[owner])
                      for owner in sorted(self._current)}  # sorted: deterministic writes
            out, treasury_in, coinbase_in, _ = self._pending
            pay_out_fees(state, vault, treasury, coinbase, out, treasury_in, coinbase_in)
        else:
            stored = self._current
        self._current = dict(stored) if keep else {}
        self._pending = (0, 0, 0, 0)

    def forget_all(self) -> None:
        """EVM code of the vault ran: any owner's records may have changed."""
        require(not self.dirty, "forget only what is stored")
        self._journal.append(("restore", self._current, self._pending))
        self._current = {}

    def replace(self, owner: Address, account: FeeAccount) -> None:
        """`account` was just stored for `owner` outside the cache (a charge stored at once)."""
        require(not self.dirty, "replace only next to stored records")
        self._journal.append(("restore", self._current, self._pending))
        self._current = dict(self._current)
        self._current[owner] = account

    def mark(self, checkpoint: object) -> None:
        self._marks[checkpoint] = len(self._journal)

    def rollback(self, checkpoint: object) -> None:
        """Undo back to `checkpoint`'s mark; a checkpoint from before the last lock means
        the lock point, as for the state's own journal."""
        length = self._marks.pop(checkpoint, 0)
        while len(self._journal) > length:
            entry = self._journal.pop()
            if entry[0] == "load":
                del self._current[entry[1]]
            elif entry[0] == "charge":
                _, owner, previous, pending = entry
                self._current[owner] = previous
                self._pending = pending
            else:
                _, self._current, self._pending = entry

    def lock(self) -> None:
        """A new transaction starts: what came before can no longer be reverted."""
        self._journal.clear()
        self._marks.clear()


class WriteBackStateMixin:
    """Mix in before FeeStateMixin: the cache follows the state's snapshots, reverts and
    locks, and is flushed before any state root, so no caller sees a root without the
    block's charges."""

    _fee_cache = None

    @property
    def fee_cache(self) -> FeeRecordCache:
        if self._fee_cache is None:
            self._fee_cache = FeeRecordCache()
        return self._fee_cache

    def fee_flush(self, keep: bool = False) -> None:
        cfg = self.fee_config
        self.fee_cache.flush(self, cfg.vault, cfg.treasury, self.coinbase, keep)

    def snapshot(self):
        snapshot = super().snapshot()
        self.fee_cache.mark(snapshot[1])
        return snapshot

    def revert(self, snapshot) -> None:
        super().revert(snapshot)
        self.fee_cache.rollback(snapshot[1])

    def lock_changes(self) -> None:
        self.fee_cache.lock()
        super().lock_changes()

    def make_state_root(self):
        self.fee_flush()
        return super().make_state_root()

    def persist(self):
        self.fee_flush()
        return super().persist()


class WriteBackExecutorMixin:
    """Mix in before FeeExecutorMixin: plain lot-paid transactions charge the cache."""

    _cached = False  # this transaction charges through the cache

    def validate_transaction(self, transaction: SignedTransactionAPI) -> None:
        state = self.vm_state
        if state.fee_cache.dirty and transaction.sender in self._special():
            # Validation reads the sender's balance, which may have cached credits.
            state.fee_flush()
        super().validate_transaction(transaction)
        self._cached = self._cacheable(transaction)
        if not self._cached:
            # Anything the transaction runs or touches sees every earlier charge stored
            # and locked (SSTORE gas reads "original" values), as in the per-transaction
            # design. The records stay cached as clean entries until the transaction has
            # shown whether the vault's code ran (finalize).
            state.fee_flush(keep=True)
            state.lock_changes()

    def _cacheable(self, tx: SignedTransactionAPI) -> bool:
        """A lot-paid transaction that runs no EVM code and moves no ETH of the vault,
        the treasury or the coinbase: nothing in it can observe a cached charge."""
        if self._payment is not Payment.LOTS or tx.type_id == SET_CODE_TX_TYPE:
            return False
        if tx.to == CREATE_CONTRACT_ADDRESS or int.from_bytes(tx.to, "big") <= PRECOMPILE_LIMIT:
            return False
        special = self._special()
        if tx.to in special or tx.sender in special:
            return False
        return not self.vm_state.get_code(tx.to)

    def _special(self) -> Tuple[bytes, bytes, bytes]:
        """Accounts whose balance or storage the write-back cache holds back."""
        cfg = self.fee_config
        return cfg.vault, cfg.treasury, self.vm_state.coinbase

    def load_account(self, owner) -> FeeAccount:
        cache = self.vm_state.fee_cache
        account = cache.get(owner)
        if account is None:
            account = self.read_stored_account(owner)
            cache.load(owner, account)
        return account

    def finalize_computation(
        self, transaction: SignedTransactionAPI, computation: ComputationAPI
    ) -> ComputationAPI:
        if not self._cached and self._vault_code_ran(computation):
            self.vm_state.fee_cache.forget_all()  # vault code may have changed any record
        return super().finalize_computation(transaction, computation)

    def _vault_code_ran(self, computation: ComputationAPI) -> bool:
        """Whether any frame ran the vault's code or wrote its storage (reverted frames
        too: conservative). Only then can EVM code have changed fee records."""
        vault = self.fee_config.vault
        frames = [computation]
        while frames:
            frame = frames.pop()
            if vault in (frame.msg.storage_address, frame.msg.code_address):
                return True
            frames.extend(frame.children)
        return False

    def account_after_execution(self, transaction: SignedTransactionAPI) -> FeeAccount:
        # No code ran in a cached transaction: the record read during validation is exact.
        return self._account if self._cached else super().account_after_execution(transaction)

    def settle_charge(
        self, after: FeeAccount, vault_out_wei: int, treasury_in_wei: int, tip_wei: int
    ) -> FeeAccount:
        cache = self.vm_state.fee_cache
        if not self._cached:
            stored = super().settle_charge(after, vault_out_wei, treasury_in_wei, tip_wei)
            cache.replace(after.owner, stored)  # the clean entry follows the stored record
            return stored
        vault_balance = self.vm_state.get_balance(self.fee_config.vault)
        require(vault_balance - cache.vault_out_wei >= vault_out_wei, "vault holds every live lot")
        cache.charge(after, vault_out_wei, treasury_in_wei, tip_wei)
        return after
