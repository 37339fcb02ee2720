"""Fee accounts in the vault's storage (layout v3), read and written through py-evm's
journaled state API.

A charge reads and writes the header word `head0` and the lots it draws, nothing else:
the release line in head0 gives the available balance without a pass over the lots, and
the lots are stored as a chain in charge order, so a charge walks it from the front.
Reads go through a `read(offset)` callable (word at base + offset of the owner's record),
so the planning below is pure given the words it reads; every write goes through
`state.set_storage`/`delta_balance` and reverts with the transaction.
"""
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Callable, Dict, List, Optional, Tuple

from eth_typing import Address
from eth_utils import keccak

from .layout import (
    HEAD0_OFFSET,
    HEAD1_OFFSET,
    LOTS_OFFSET,
    NO_LOT,
    Head,
    LotWord,
    Totals,
    account_base_slot,
    link,
    pack_head,
    pack_lot,
    pack_totals,
    unpack_head,
    unpack_lot,
    unpack_totals,
)
from .lots import (
    Lot,
    ReleasePolicy,
    Status,
    allocate_charge,
    balance_status,
    is_expired,
    line_term,
    line_without,
    lot_available,
    release_terms,
    require,
)

# Events the hook emits from the vault address; declared identically in FeeVault.vy.
FEE_CHARGED_TOPIC = int.from_bytes(
    keccak(b"FeeCharged(address,uint256,uint256,uint256,uint8)"), "big"
)
LOT_CHARGED_TOPIC = int.from_bytes(keccak(b"LotCharged(address,uint256,uint256)"), "big")
LOT_EXPIRED_TOPIC = int.from_bytes(keccak(b"LotExpired(address,uint256,uint256)"), "big")
STATUS_CHANGED_TOPIC = int.from_bytes(
    keccak(b"StatusChanged(address,uint8,uint8)"), "big"
)

LogEntry = Tuple[bytes, Tuple[int, ...], bytes]
Reader = Callable[[int], int]  # offset in the owner's record -> stored word


@lru_cache(maxsize=65536)
def _base_slot(owner: bytes) -> int:
    # Pure function of the address: caching it cannot change consensus results.
    return account_base_slot(owner)


def reader(state, vault: Address, owner: Address) -> Reader:
    base = _base_slot(owner)
    return lambda offset: state.get_storage(vault, base + offset)


@dataclass(frozen=True)
class FeeAccount:
    """What a transaction knows of an account: head0, the front of its charge chain as
    far as read (`lots`, in charge order), head1 once needed, and for every word read the
    value the state holds (`stored`), so writing the record back touches only changes."""

    owner: Address
    head: Head
    lots: Tuple[LotWord, ...] = ()
    totals: Optional[Totals] = None
    offchain: Tuple[Tuple[int, int], ...] = ()  # (slot, word) of lots taken off the chain
    stored: Dict[int, int] = field(default_factory=dict, compare=False, repr=False)

    @property
    def next_link(self) -> int:
        """Link to the first lot not read yet (NO_LOT: the whole chain is read)."""
        return self.lots[-1].next if self.lots else self.head.first

    def read_next(self, read: Reader) -> "FeeAccount":
        slot = self.next_link - 1
        require(slot >= 0, "the charge chain ends here")
        word = read(LOTS_OFFSET + slot)
        stored = dict(self.stored)
        stored[LOTS_OFFSET + slot] = word
        return replace(self, lots=self.lots + (unpack_lot(slot, word),), stored=stored)

    def with_totals(self, read: Reader) -> "FeeAccount":
        if self.totals is not None:
            return self
        word = read(HEAD1_OFFSET)
        stored = dict(self.stored)
        stored[HEAD1_OFFSET] = word
        return replace(self, totals=unpack_totals(word), stored=stored)

    def past_expired(self, t: int, read: Reader) -> "FeeAccount":
        """Read on until the chain's lots expired at t are all known, plus one more."""
        account = self
        while account.next_link != NO_LOT and all(is_expired(w.lot, t) for w in account.lots):
            account = account.read_next(read)
        return account

    def read_all(self, read: Reader) -> "FeeAccount":
        """The whole charge chain (views, refusal messages, the pool)."""
        account = self
        while account.next_link != NO_LOT:
            account = account.read_next(read)
        return account

    def available_at(self, t: int, policy: ReleasePolicy) -> int:
        """Available at block time t (>= the line's anchor); `past_expired(t)` first."""
        expired = [w.lot for w in self.lots if is_expired(w.lot, t)]
        require(len(expired) < len(self.lots) or self.next_link == NO_LOT,
                "read the lots expired at t first (past_expired)")
        return line_without(self.head.line, expired, t, policy).available

    def words(self) -> Dict[int, int]:
        """Every word this record read, as it must now be stored."""
        words = {HEAD0_OFFSET: pack_head(self.head)}
        if self.totals is not None:
            words[HEAD1_OFFSET] = pack_totals(self.totals)
        for word in self.lots:
            words[LOTS_OFFSET + word.lot.slot] = pack_lot(word)
        for slot, word in self.offchain:
            words[LOTS_OFFSET + slot] = word
        require(set(words) <= set(self.stored), "a record writes only words it read")
        return words

    def clean(self) -> "FeeAccount":
        """The record once its words are stored."""
        return replace(self, offchain=(), stored=self.words())


def load_account(state, vault: Address, owner: Address, t: Optional[int] = None) -> FeeAccount:
    """head0 and the charge chain's front up to its first lot unexpired at t (the
    whole chain when t is None)."""
    read = reader(state, vault, owner)
    word = read(HEAD0_OFFSET)
    account = FeeAccount(owner, unpack_head(word), stored={HEAD0_OFFSET: word})
    return account.read_all(read) if t is None else account.past_expired(t, read)


@dataclass(frozen=True)
class Charge:
    """What one fee charge did, for the receipt logs and the caller's ETH moves."""

    fee_wei: int
    allocation: Tuple[Tuple[int, int], ...]  # (slot, wei) in charge order
    swept: Tuple[Tuple[int, int], ...]  # (slot, expired remainder wei)
    available_after_wei: int
    status_before: Status
    status_after: Status

    @property
    def swept_wei(self) -> int:
        return sum(remainder for _, remainder in self.swept)


def plan_charge(
    account: FeeAccount,
    fee_wei: int,
    t: int,
    policy: ReleasePolicy,
    low_balance_wei: int,
    read: Reader,
) -> Tuple[Charge, FeeAccount]:
    """Sweep the chain's expired front, take `fee_wei` from the front on, move used-up
    front lots to the spent chain — on paper, reading only the lots it walks.

    Returns the charge and the record as it must be stored. Moves no ETH: the caller moves
    exactly `fee_wei + swept_wei` out of the vault.
    """
    head = account.head
    require(head.opened and not head.frozen, "only an open, unfrozen account is charged")
    account = account.past_expired(t, read)
    swept = [w for w in account.lots if is_expired(w.lot, t)]
    lots = list(account.lots[len(swept):])
    offchain = list(account.offchain) + [(w.lot.slot, 0) for w in swept]
    totals = account.totals
    if swept:
        account = account.with_totals(read)
        totals = replace(account.totals, expired=account.totals.expired
                         + sum(w.lot.remaining for w in swept))

    # Walk from the front while the fee is not covered.
    covered = sum(lot_available(w.lot, t, policy) for w in lots)
    while covered < fee_wei and account.next_link != NO_LOT:
        account = account.read_next(read)
        lots.append(account.lots[-1])
        covered += lot_available(lots[-1].lot, t, policy)
    allocation = allocate_charge([w.lot for w in lots], fee_wei, t, policy)
    taken = dict(allocation)
    lots = [LotWord(replace(w.lot, used=w.lot.used + taken[w.lot.slot]), w.next)
            if w.lot.slot in taken else w for w in lots]

    # Used-up lots leave the front for the spent chain (their share of the line is 0).
    spent_link = head.spent
    retired: List[Lot] = []
    while True:
        if not lots and account.next_link != NO_LOT:
            account = account.read_next(read)
            lots.append(account.lots[-1])
        if not lots or not lots[0].lot.spent:
            break
        front = lots.pop(0)
        retired.append(front.lot)
        offchain.append((front.lot.slot, pack_lot(LotWord(front.lot, spent_link))))
        spent_link = link(front.lot.slot)
    require(all(line_term(lot, t, policy) == 0 and release_terms(
        lot.amount, lot.start, lot.expiry, policy)[1] == 0 for lot in retired),
        "a used-up lot has nothing left on the line")

    line = line_without(head.line, [w.lot for w in swept], t, policy).moved(t, -fee_wei)
    if account.next_link == NO_LOT:  # the whole chain was read: the line must equal it
        require(line.available == sum(lot_available(w.lot, t, policy) for w in lots),
                f"{account.owner.hex()}: release line disagrees with the lots at {t}")
    first = link(lots[0].lot.slot) if lots else account.next_link
    status_after = balance_status(line.available, low_balance_wei)
    new_head = replace(head, line=line, first=first, spent=spent_link, status=int(status_after))
    after = replace(account, head=new_head, lots=tuple(lots), totals=totals,
                    offchain=tuple(offchain))
    charge = Charge(
        fee_wei=fee_wei,
        allocation=allocation,
        swept=tuple((w.lot.slot, w.lot.remaining) for w in swept),
        available_after_wei=line.available,
        status_before=Status(head.status),
        status_after=status_after,
    )
    return charge, after


def write_account(state, vault: Address, account: FeeAccount) -> FeeAccount:
    """Store the words of `account` that differ from what the state holds; returns the
    clean record. Deterministic order: ascending offsets."""
    base = _base_slot(account.owner)
    words = account.words()
    for offset in sorted(words):
        if words[offset] != account.stored[offset]:
            state.set_storage(vault, base + offset, words[offset])
    return account.clean()


def charge_account(
    state,
    vault: Address,
    account: FeeAccount,
    fee_wei: int,
    t: int,
    policy: ReleasePolicy,
    low_balance_wei: int,
) -> Tuple[Charge, FeeAccount]:
    """`plan_charge`, stored at once (the per-transaction design)."""
    read = reader(state, vault, account.owner)
    charge, after = plan_charge(account, fee_wei, t, policy, low_balance_wei, read)
    return charge, write_account(state, vault, after)


def pay_out_fees(
    state,
    vault: Address,
    treasury: Address,
    coinbase: Address,
    vault_out_wei: int,
    treasury_in_wei: int,
    coinbase_in_wei: int,
) -> None:
    """Move charged fees (and swept remainders) out of the vault: the tip to the coinbase,
    always (an empty coinbase account is created if need be), the rest to the treasury
    when positive. One place for both designs, so their balance moves cannot drift."""
    require(vault_out_wei == treasury_in_wei + coinbase_in_wei,
            (vault_out_wei, treasury_in_wei, coinbase_in_wei))
    require(state.get_balance(vault) >= vault_out_wei, "vault holds every live lot")
    state.delta_balance(vault, -vault_out_wei)
    state.delta_balance(coinbase, coinbase_in_wei)
    if treasury_in_wei:
        state.delta_balance(treasury, treasury_in_wei)


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def charge_logs(vault: Address, payer: Address, charge: Charge, gas_used: int) -> Tuple[LogEntry, ...]:
    """Receipt logs for a charge, ABI-encoded by hand (static types only, no eth-abi)."""
    payer_topic = int.from_bytes(payer, "big")
    logs = [
        (vault, (LOT_EXPIRED_TOPIC, payer_topic), _word(slot) + _word(remainder))
        for slot, remainder in charge.swept
    ]
    logs.extend(
        (vault, (LOT_CHARGED_TOPIC, payer_topic), _word(slot) + _word(amount))
        for slot, amount in charge.allocation
    )
    logs.append(
        (
            vault,
            (FEE_CHARGED_TOPIC, payer_topic),
            _word(charge.fee_wei)
            + _word(gas_used)
            + _word(charge.available_after_wei)
            + _word(int(charge.status_after)),
        )
    )
    if charge.status_after != charge.status_before:
        logs.append(
            (
                vault,
                (STATUS_CHANGED_TOPIC, payer_topic),
                _word(int(charge.status_before)) + _word(int(charge.status_after)),
            )
        )
    return tuple(logs)

