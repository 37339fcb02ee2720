"""Every fee account's status as of the head, and when it will next change by time alone.

Time alone moves accounts between ACTIVE, LOW, EXHAUSTED and EXPIRED (release grows,
lots expire) without any transaction or log, so counting StatusChanged logs is not
enough. The index keeps, per account, its status at the head's time and the next block
time at which that status changes with no transaction: the next lot expiry, or the time
release crosses 1 wei or the low-balance threshold. Accounts are re-evaluated when a
block's vault logs name them, or when the head passes their next change — never by a
scan of the vault. It is rebuilt at startup from the vault's logs (one pass over the
chain, headers' blooms first) and kept per block.
"""
import heapq
import threading
from collections import Counter
from typing import Callable, Dict, Iterable, List, Optional, Set, Tuple

from eth.abc import BlockHeaderAPI
from eth_bloom import BloomFilter

from ..genesis import Genesis
from ..lots import Status, release_time
from ..query import StoredAccount, read_stored_account

WATCHED = (Status.LOW, Status.EXHAUSTED, Status.EXPIRED)


class _Account:
    __slots__ = ("owner", "status", "next_change", "stored")

    def __init__(self, owner, status, next_change, stored: StoredAccount):
        self.owner, self.status, self.next_change, self.stored = owner, status, next_change, stored


class StatusIndex:
    def __init__(self, chain, genesis: Genesis) -> None:
        self.chain = chain
        self.fee = genesis.fee
        self._lock = threading.Lock()
        self._accounts: Dict[bytes, _Account] = {}
        self._due: List[Tuple[int, bytes]] = []  # (next change, owner); stale entries skipped
        self.counts: Counter = Counter()
        self.head: Optional[BlockHeaderAPI] = None

    # -- evaluation -----------------------------------------------------------------------

    def _status_at(self, account: _Account, t: int) -> Status:
        return account.stored.status(t, self.fee.release_policy, self.fee.low_balance_wei)

    def _next_change(self, account: _Account, t: int) -> Optional[int]:
        """The first block time after t at which the status differs with no transaction."""
        stored = account.stored
        if not stored.head.opened or stored.head.frozen:
            return None
        policy = self.fee.release_policy
        candidates: Set[int] = {lot.expiry for lot in stored.lots if lot.expiry > t}
        for threshold in (1, self.fee.low_balance_wei):
            when = release_time(stored.charge_lots, threshold, t + 1, policy)
            if when is not None:
                candidates.add(when)
        now = self._status_at(account, t)
        for when in sorted(candidates):
            if self._status_at(account, when) != now:
                return when
        return None

    def _evaluate(self, state, owner: bytes, t: int) -> None:
        account = _Account(owner, Status.NONE, None, read_stored_account(state, self.fee.vault, owner))
        account.status = self._status_at(account, t)
        account.next_change = self._next_change(account, t)
        self._set(account)

    def _set(self, account: _Account) -> None:
        old = self._accounts.get(account.owner)
        if old is not None:
            self.counts[old.status] -= 1
        self._accounts[account.owner] = account
        self.counts[account.status] += 1
        if account.next_change is not None:
            heapq.heappush(self._due, (account.next_change, account.owner))

    def _state(self, header: BlockHeaderAPI):
        vm = self.chain.get_vm(header)
        return vm.build_state(self.chain.chaindb.db, header, vm.chain_context, vm.previous_hashes)

    # -- maintenance ----------------------------------------------------------------------

    def owners_in(self, receipts: Iterable) -> Set[bytes]:
        """Accounts named by the vault's logs in these receipts (owner or payer topic)."""
        vault = self.fee.vault
        owners = set()
        for receipt in receipts:
            for log in receipt.logs:
                if log.address == vault and len(log.topics) >= 2:
                    owners.add(log.topics[1].to_bytes(32, "big")[12:])
        return owners

    def apply_block(self, header: BlockHeaderAPI, receipts) -> None:
        """The head moved to `header`: re-evaluate whom its logs name and whose time came."""
        with self._lock:
            self._advance(header, self.owners_in(receipts))

    def _advance(self, header: BlockHeaderAPI, touched: Set[bytes]) -> None:
        t = header.timestamp
        while self._due and self._due[0][0] <= t:
            when, owner = heapq.heappop(self._due)
            account = self._accounts.get(owner)
            if account is not None and account.next_change == when:
                touched.add(owner)
        if touched:
            state = self._state(header)
            for owner in sorted(touched):
                self._evaluate(state, owner, t)
        self.head = header

    def rebuild(self, progress: Optional[Callable[[int, int], None]] = None) -> int:
        """Scan the chain's vault logs once (blooms first); returns the accounts found."""
        chain, vault = self.chain, self.fee.vault
        head = chain.get_canonical_head()
        owners: Set[bytes] = set()
        for number in range(1, head.block_number + 1):
            header = chain.get_canonical_block_header_by_number(number)
            if header.gas_used and vault in BloomFilter(header.bloom):
                block = chain.get_block_by_header(header)
                owners |= self.owners_in(block.get_receipts(chain.chaindb))
            if progress is not None:
                progress(number, head.block_number)
        with self._lock:
            self._accounts.clear()
            self._due.clear()
            self.counts.clear()
            self._advance(head, owners)
        return len(owners)

    # -- queries --------------------------------------------------------------------------

    def status_counts(self) -> Dict[str, int]:
        with self._lock:
            return {status.name: self.counts.get(status, 0) for status in Status if status != Status.NONE}

    def watch_list(self, horizon_seconds: int, limit: int,
                   statuses: Tuple[Status, ...] = WATCHED) -> List[dict]:
        """Accounts in `statuses` now, or entering one within the horizon (by time alone),
        soonest first; at most `limit`."""
        with self._lock:  # a snapshot: evaluation runs outside the lock the producer needs
            if self.head is None:
                return []
            now = self.head.timestamp
            accounts = list(self._accounts.values())  # records are replaced, never mutated
        end = now + horizon_seconds
        found = []
        for account in accounts:
            if account.status in statuses:
                found.append((now, account.owner, account.status, account.status))
                continue
            when = account.next_change
            while when is not None and when <= end:
                then = self._status_at(account, when)
                if then in statuses:
                    found.append((when, account.owner, account.status, then))
                    break
                when = self._next_change(account, when)
        found.sort(key=lambda item: (item[0], item[1]))
        return [{"address": owner, "statusNow": now_s.name, "status": then.name, "at": when}
                for when, owner, now_s, then in found[:limit]]
