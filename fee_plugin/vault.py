"""Fee accounts in the vault's storage, read and written through py-evm's state API.

Every write goes through `state.set_storage`/`delta_balance`, so it is journaled with the
transaction and reverts with it. Each header and lot slot is read at most once per call.
"""
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Optional, Tuple

from eth_typing import Address
from eth_utils import keccak

from .layout import (
    Header,
    Lot,
    account_base_slot,
    head0_slot,
    head1_slot,
    lot_slot,
    pack_head0,
    pack_head1,
    pack_lot,
    unpack_header,
    unpack_lot,
)
from .lots import (
    ReleasePolicy,
    Status,
    account_available,
    account_status,
    allocate_charge,
    apply_allocation,
    is_expired,
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


@lru_cache(maxsize=65536)
def _base_slot(owner: bytes) -> int:
    # Pure function of the address: caching it cannot change consensus results.
    return account_base_slot(owner)


@dataclass(frozen=True)
class FeeAccount:
    """An account's header and live lots as stored (lots in ascending slot order)."""

    owner: Address
    header: Header
    lots: Tuple[Lot, ...]
    # ((t, policy), available) as computed for these very lots; not part of the record.
    # Available is a pure function of (lots, t, policy), so the memo cannot go stale; it
    # spares a many-lot payer's next transaction in the same block a pass over its lots.
    available_memo: Optional[Tuple[Tuple[int, ReleasePolicy], int]] = field(
        default=None, compare=False, repr=False
    )

    def available_at(self, t: int, policy: ReleasePolicy) -> int:
        memo = self.available_memo
        if memo is not None and memo[0] == (t, policy):
            return memo[1]
        return account_available(self.lots, t, policy)


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


def read_account(state, vault: Address, owner: Address) -> FeeAccount:
    base = _base_slot(owner)
    header = unpack_header(
        state.get_storage(vault, head0_slot(base)),
        state.get_storage(vault, head1_slot(base)),
    )
    lots = tuple(
        unpack_lot(i, state.get_storage(vault, lot_slot(base, i)))
        for i in header.live_slots()
    )
    return FeeAccount(owner, header, lots)


def plan_charge(
    account: FeeAccount,
    fee_wei: int,
    t: int,
    policy: ReleasePolicy,
    low_balance_wei: int,
) -> Tuple[Charge, FeeAccount]:
    """Sweep the account's expired lots and take `fee_wei` from its lots, on paper.

    Pure: returns the charge and the account as it must be stored afterwards. Moves no ETH:
    the caller moves exactly `fee_wei + swept_wei` out of the vault.
    """
    header = account.header
    swept = tuple((lot.slot, lot.remaining) for lot in account.lots if is_expired(lot, t))
    live = tuple(lot for lot in account.lots if not is_expired(lot, t))
    allocation = allocate_charge(live, fee_wei, t, policy)
    charged = apply_allocation(live, allocation)
    live_mask = header.live_mask
    for slot, _ in swept:
        live_mask &= ~(1 << slot)

    available_after = account_available(charged, t, policy)
    status_after = account_status(
        header.opened, header.frozen, charged, t, policy, low_balance_wei, available_after
    )
    new_header = Header(
        deposited=header.deposited,
        charged=header.charged + fee_wei,
        live_mask=live_mask,
        expired=header.expired + sum(remainder for _, remainder in swept),
        available=available_after,
        status=int(status_after),
        flags=header.flags,
    )
    # Accounting identity, exact in wei: deposited = charged + expired + remaining.
    assert new_header.deposited == (
        new_header.charged + new_header.expired + sum(lot.remaining for lot in charged)
    ), (account, new_header, charged)
    charge = Charge(
        fee_wei=fee_wei,
        allocation=allocation,
        swept=swept,
        available_after_wei=available_after,
        status_before=Status(header.status),
        status_after=status_after,
    )
    return charge, FeeAccount(account.owner, new_header, charged, ((t, policy), available_after))


def write_account(state, vault: Address, before: FeeAccount, after: FeeAccount) -> None:
    """Store `after` over `before` (as read from `state`): only the words that differ."""
    assert before.owner == after.owner
    base = _base_slot(after.owner)
    old_words = {lot.slot: pack_lot(lot) for lot in before.lots}
    new_slots = set()
    for lot in after.lots:
        new_slots.add(lot.slot)
        word = pack_lot(lot)
        if old_words.get(lot.slot) != word:
            state.set_storage(vault, lot_slot(base, lot.slot), word)
    for slot in old_words:
        if slot not in new_slots:
            state.set_storage(vault, lot_slot(base, slot), 0)
    old, new = before.header, after.header
    if (new.charged, new.available, new.live_mask) != (old.charged, old.available, old.live_mask):
        state.set_storage(vault, head0_slot(base), pack_head0(new))
    if (new.deposited, new.expired, new.status, new.flags) != (
        old.deposited, old.expired, old.status, old.flags
    ):
        state.set_storage(vault, head1_slot(base), pack_head1(new))


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
    charge, after = plan_charge(account, fee_wei, t, policy, low_balance_wei)
    write_account(state, vault, account, after)
    return charge, after


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
    assert vault_out_wei == treasury_in_wei + coinbase_in_wei, (
        vault_out_wei, treasury_in_wei, coinbase_in_wei
    )
    assert state.get_balance(vault) >= vault_out_wei, "vault holds every live lot"
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
