"""Pure lot math: release, availability, charge allocation and status.

Integer arithmetic only and the block timestamp as the only clock: this runs inside
consensus. The vault contract's views compute exactly the same numbers (differential
tests pin that), see contracts/LAYOUT.md.
"""
from dataclasses import dataclass
from enum import IntEnum
from typing import Iterable, Optional, Sequence, Tuple

from .layout import TIME_LIMIT, Lot

BPS_DENOMINATOR = 10_000


class Consumption(IntEnum):
    UNIFORM = 0
    UPFRONT = 1


class Status(IntEnum):
    """Account status; the numeric order is part of the contract ABI."""

    NONE = 0
    ACTIVE = 1
    LOW = 2
    EXHAUSTED = 3
    EXPIRED = 4
    FROZEN = 5


@dataclass(frozen=True)
class ReleasePolicy:
    """How a lot's quota becomes spendable over its validity (genesis constants)."""

    mode: Consumption = Consumption.UNIFORM
    initial_release_bps: int = 0

    def __post_init__(self) -> None:
        assert self.mode in (Consumption.UNIFORM, Consumption.UPFRONT), self.mode
        assert 0 <= self.initial_release_bps <= BPS_DENOMINATOR, self


class InsufficientCredit(Exception):
    """A charge larger than what the lots make available at that time."""

    def __init__(self, available_wei: int, required_wei: int) -> None:
        super().__init__(f"available {available_wei} wei < required {required_wei} wei")
        self.available_wei = available_wei
        self.required_wei = required_wei


def is_expired(lot: Lot, t: int) -> bool:
    return t >= lot.expiry


def released(lot: Lot, t: int, policy: ReleasePolicy) -> int:
    """Quota released by time t (before expiry); at most the lot's amount."""
    if policy.mode == Consumption.UPFRONT:
        return lot.amount
    initial = lot.amount * policy.initial_release_bps // BPS_DENOMINATOR
    elapsed = min(max(t, lot.start), lot.expiry) - lot.start
    result = initial + (lot.amount - initial) * elapsed // (lot.expiry - lot.start)
    assert initial <= result <= lot.amount, (lot, t, result)
    return result


def lot_available(lot: Lot, t: int, policy: ReleasePolicy) -> int:
    """What may still be charged from this lot at time t (0 once expired)."""
    if is_expired(lot, t):
        return 0
    result = released(lot, t, policy) - lot.used
    # Charges never take more than was released, and release never goes backwards.
    return max(result, 0)


def account_available(lots: Iterable[Lot], t: int, policy: ReleasePolicy) -> int:
    return sum(lot_available(lot, t, policy) for lot in lots)


def charge_order(lots: Iterable[Lot]) -> Tuple[Lot, ...]:
    """Earliest expiry first; ties: oldest start, then lowest slot (total order)."""
    return tuple(sorted(lots, key=lambda lot: (lot.expiry, lot.start, lot.slot)))


def allocate_charge(
    lots: Sequence[Lot], fee_wei: int, t: int, policy: ReleasePolicy
) -> Tuple[Tuple[int, int], ...]:
    """Split a fee over the lots: ((slot, amount_wei), ...) in charge order.

    Raises InsufficientCredit (and allocates nothing) if the lots cannot cover the fee.
    """
    assert fee_wei >= 0, fee_wei
    allocation = []
    remaining_wei = fee_wei
    for lot in charge_order(lots):
        if remaining_wei == 0:
            break
        take = min(lot_available(lot, t, policy), remaining_wei)
        if take > 0:
            allocation.append((lot.slot, take))
            remaining_wei -= take
    if remaining_wei:
        raise InsufficientCredit(account_available(lots, t, policy), fee_wei)
    assert sum(amount for _, amount in allocation) == fee_wei
    return tuple(allocation)


def apply_allocation(
    lots: Sequence[Lot], allocation: Sequence[Tuple[int, int]]
) -> Tuple[Lot, ...]:
    """The lots after an allocation was charged (same order as given)."""
    taken = dict(allocation)
    # Untouched lots are kept as they are (most of a many-lot account on each charge).
    return tuple(
        Lot(lot.slot, lot.amount, lot.used + taken[lot.slot], lot.start, lot.expiry)
        if lot.slot in taken
        else lot
        for lot in lots
    )


def account_status(
    opened: bool,
    frozen: bool,
    lots: Sequence[Lot],
    t: int,
    policy: ReleasePolicy,
    low_balance_wei: int,
    available_wei: Optional[int] = None,
) -> Status:
    """`available_wei`, when the caller has it, must be account_available(lots, t, policy)."""
    if not opened:
        return Status.NONE
    if frozen:
        return Status.FROZEN
    if all(is_expired(lot, t) for lot in lots):
        return Status.EXPIRED
    if available_wei is None:
        available_wei = account_available(lots, t, policy)
    else:
        assert available_wei >= 0, available_wei
    if available_wei == 0:
        return Status.EXHAUSTED
    if available_wei < low_balance_wei:
        return Status.LOW
    return Status.ACTIVE


def release_time(
    lots: Sequence[Lot], required_wei: int, t: int, policy: ReleasePolicy
) -> Optional[int]:
    """Earliest block time >= t at which the lots make required_wei available.

    None if that never happens (lots expire or are used up first). Between two expiries
    the set of unexpired lots is fixed and availability only grows, so a binary search per
    interval finds the answer exactly.
    """
    boundaries = sorted({t} | {lot.expiry for lot in lots if lot.expiry > t})
    for i, low in enumerate(boundaries):
        high = boundaries[i + 1] - 1 if i + 1 < len(boundaries) else TIME_LIMIT - 1
        if account_available(lots, high, policy) < required_wei:
            continue
        while low < high:
            mid = (low + high) // 2
            if account_available(lots, mid, policy) >= required_wei:
                high = mid
            else:
                low = mid + 1
        return low
    return None
