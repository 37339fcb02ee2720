"""Per-block write-back of fee records: the fast design, behind a switch.

The per-transaction design (vault.charge_account) stores every charge at once: a header
and a lot word per payer per transaction, plus three balance moves. Here charges of plain
transactions (no EVM code runs) are kept in memory for the block and stored once, at the
first point anything could observe them: before a transaction that runs code or touches
the vault, treasury or coinbase, before block post-processing and withdrawals, and before
any state root. The final storage words and balances are exactly those of the simple
design, which stays the oracle (tests/test_writeback.py builds the same blocks both ways).

The cache is journaled with the state: a snapshot records the journal length, a revert
undoes back to it, `lock_changes` (a new transaction starts) forgets the journal, as the
state does. ../shared/notes/performance.md lists the pitfalls this follows.
"""
from typing import Dict, List, Optional, Tuple

from eth_typing import Address

from .vault import FeeAccount, pay_out_fees, write_account

_Pending = Tuple[int, int, int, int]  # vault out, treasury in, coinbase in, charges


class FeeRecordCache:
    def __init__(self) -> None:
        self._stored: Dict[Address, FeeAccount] = {}  # as the state holds it
        self._current: Dict[Address, FeeAccount] = {}  # with the block's pending charges
        self._pending: _Pending = (0, 0, 0, 0)
        self._journal: List[tuple] = []
        self._marks: Dict[object, int] = {}

    # -- reads ------------------------------------------------------------------------

    def get(self, owner: Address) -> Optional[FeeAccount]:
        return self._current.get(owner)

    def load(self, owner: Address, account: FeeAccount) -> None:
        """Remember an account just read from the state (nothing pending for it)."""
        assert owner not in self._current, owner
        self._journal.append(("load", owner))
        self._stored[owner] = account
        self._current[owner] = account

    @property
    def vault_out_wei(self) -> int:
        return self._pending[0]

    @property
    def dirty(self) -> bool:
        return self._pending[3] > 0

    # -- writes -----------------------------------------------------------------------

    def charge(
        self, after: FeeAccount, vault_out_wei: int, treasury_in_wei: int, coinbase_in_wei: int
    ) -> None:
        owner = after.owner
        assert owner in self._current, owner
        self._journal.append(("charge", owner, self._current[owner], self._pending))
        self._current[owner] = after
        out, treasury, coinbase, charges = self._pending
        self._pending = (
            out + vault_out_wei,
            treasury + treasury_in_wei,
            coinbase + coinbase_in_wei,
            charges + 1,
        )
        assert self._pending[0] == self._pending[1] + self._pending[2], self._pending

    def flush(
        self, state, vault: Address, treasury: Address, coinbase: Address, keep: bool = False
    ) -> None:
        """Store every pending record and balance move. Then forget everything cached, or
        with `keep` keep the records as clean entries: the caller then owes `forget_all`
        or `replace` once the transaction that follows has shown what it changed."""
        if self.dirty:
            for owner in sorted(self._current):  # sorted: deterministic write order
                before, after = self._stored[owner], self._current[owner]
                if after is not before:
                    write_account(state, vault, before, after)
            out, treasury_in, coinbase_in, _ = self._pending
            pay_out_fees(state, vault, treasury, coinbase, out, treasury_in, coinbase_in)
        self._journal.append(("restore", self._stored, self._current, self._pending))
        self._current = dict(self._current) if keep else {}
        self._stored, self._pending = dict(self._current), (0, 0, 0, 0)

    def forget_all(self) -> None:
        """EVM code of the vault ran: any owner's records may have changed."""
        assert not self.dirty, "forget only what is stored"
        self._journal.append(("restore", self._stored, self._current, self._pending))
        self._stored, self._current = {}, {}

    def replace(self, owner: Address, account: FeeAccount) -> None:
        """`account` was just stored for `owner` outside the cache (a charge stored at once)."""
        assert not self.dirty, "replace only next to stored records"
        self._journal.append(("restore", self._stored, self._current, self._pending))
        self._stored, self._current = dict(self._stored), dict(self._current)
        self._stored[owner] = self._current[owner] = account

    # -- journal ----------------------------------------------------------------------

    def mark(self, checkpoint: object) -> None:
        self._marks[checkpoint] = len(self._journal)

    def rollback(self, checkpoint: object) -> None:
        """Undo back to `checkpoint`'s mark; a checkpoint from before the last lock means
        the lock point, as for the state's own journal."""
        length = self._marks.pop(checkpoint, 0)
        while len(self._journal) > length:
            entry = self._journal.pop()
            if entry[0] == "load":
                del self._stored[entry[1]]
                del self._current[entry[1]]
            elif entry[0] == "charge":
                _, owner, previous, pending = entry
                self._current[owner] = previous
                self._pending = pending
            else:
                _, self._stored, self._current, self._pending = entry

    def lock(self) -> None:
        """A new transaction starts: what came before can no longer be reverted."""
        self._journal.clear()
        self._marks.clear()
