"""Pure lot math: release, availability, the account's release line, allocation, status.

Integer arithmetic only and the block timestamp as the only clock: this runs inside
consensus. The vault contract's views compute exactly the same numbers (differential
tests pin that), see contracts/LAYOUT.md. Nothing here knows how lots are stored.

Release (layout v3): a lot of amount A over [s, e) releases at an integer rate
r = (A − R0) // (e − s) per second, with R0 = A·initialReleaseBps // 10000 plus the
rounding remainder released at the start: released(t) = I + r·(t − s), I = A − r·(e − s).
So an account's total release is a straight line between expiries, and its available
balance is one `Line` (available at an anchor time plus a rate), not a pass over its lots.
"""
from dataclasses import dataclass
from enum import IntEnum
from typing import Iterable, Optional, Sequence, Tuple

BPS_DENOMINATOR = 10_000
LOTS_CAPACITY = 64  # lots per account; genesis maxLiveLots <= this
AMOUNT_BITS = 84
TIME_BITS = 40
AMOUNT_LIMIT = 1 << AMOUNT_BITS  # a lot's amount is < this
TIME_LIMIT = 1 << TIME_BITS  # timestamps are < this
LINE_LIMIT = LOTS_CAPACITY * AMOUNT_LIMIT  # > any sum of live amounts: bounds a Line's fields


class InvariantError(AssertionError):
    """A money invariant failed: raised by `require`, which `python -O` does not strip."""


def require(condition: bool, what: object) -> None:
    if not condition:
        raise InvariantError(what)


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
class Lot:
    """One deposit: its quota, what was charged from it and its validity window."""

    slot: int
    amount: int
    used: int
    start: int
    expiry: int

    def __post_init__(self) -> None:
        require(0 <= self.slot < LOTS_CAPACITY, self)
        require(0 < self.amount < AMOUNT_LIMIT, self)
        require(0 <= self.used <= self.amount, self)
        require(0 <= self.start < self.expiry < TIME_LIMIT, self)

    @property
    def remaining(self) -> int:
        return self.amount - self.used

    @property
    def spent(self) -> bool:
        return self.used == self.amount


@dataclass(frozen=True)
class ReleasePolicy:
    """How a lot's quota becomes spendable over its validity (genesis constants)."""

    mode: Consumption = Consumption.UNIFORM
    initial_release_bps: int = 0

    def __post_init__(self) -> None:
        require(self.mode in (Consumption.UNIFORM, Consumption.UPFRONT), self.mode)
        require(0 <= self.initial_release_bps <= BPS_DENOMINATOR, self)


class InsufficientCredit(Exception):
    """A charge larger than what the lots make available at that time."""

    def __init__(self, available_wei: int, required_wei: int) -> None:
        super().__init__(f"available {available_wei} wei < required {required_wei} wei")
        self.available_wei = available_wei
        self.required_wei = required_wei


def is_expired(lot: Lot, t: int) -> bool:
    return t >= lot.expiry


def release_terms(amount: int, start: int, expiry: int, policy: ReleasePolicy) -> Tuple[int, int]:
    """(released at start, rate per second) of a lot; upfront lots release all at start."""
    if policy.mode == Consumption.UPFRONT:
        return amount, 0
    initial = amount * policy.initial_release_bps // BPS_DENOMINATOR
    rate = (amount - initial) // (expiry - start)
    return amount - rate * (expiry - start), rate


def released(lot: Lot, t: int, policy: ReleasePolicy) -> int:
    """Quota released by time t: I + r·(t − s) with t clamped to [s, e]; A from expiry on."""
    initial, rate = release_terms(lot.amount, lot.start, lot.expiry, policy)
    result = initial + rate * (min(max(t, lot.start), lot.expiry) - lot.start)
    require(initial <= result <= lot.amount, (lot, t, result))
    return result


def lot_available(lot: Lot, t: int, policy: ReleasePolicy) -> int:
    """What may still be charged from this lot at time t (0 once expired)."""
    if is_expired(lot, t):
        return 0
    result = released(lot, t, policy) - lot.used
    # Charges never take more than was released, and release never goes backwards.
    return max(result, 0)


def line_term(lot: Lot, t: int, policy: ReleasePolicy) -> int:
    """The lot's share of the account's line at t: I + r·(t − s) − u, extended linearly
    past expiry (what must be taken off the line when an expired lot is swept at t)."""
    initial, rate = release_terms(lot.amount, lot.start, lot.expiry, policy)
    return initial + rate * (t - lot.start) - lot.used


def account_available(lots: Iterable[Lot], t: int, policy: ReleasePolicy) -> int:
    """Σ lot_available: the reference the O(1) `Line` must always equal."""
    return sum(lot_available(lot, t, policy) for lot in lots)


@dataclass(frozen=True)
class Line:
    """Σ (I + r·(t − s) − u) over the lots in charge: `available` at block time `anchor`
    and the summed `rate`. Exact for any t >= anchor before the first of them expires."""

    available: int = 0
    rate: int = 0
    anchor: int = 0

    def __post_init__(self) -> None:
        require(0 <= self.available < LINE_LIMIT and 0 <= self.rate < LINE_LIMIT, self)
        require(0 <= self.anchor < TIME_LIMIT, self)

    def at(self, t: int) -> int:
        """The line's value at t (no lot swept); never before the anchor."""
        require(t >= self.anchor, (self, t))
        return self.available + self.rate * (t - self.anchor)

    def moved(self, t: int, delta_wei: int = 0, delta_rate: int = 0) -> "Line":
        """Re-anchored at t, `delta_wei` added to its value there, `delta_rate` to its rate."""
        return Line(self.at(t) + delta_wei, self.rate + delta_rate, t)


def line_without(line: Line, swept: Sequence[Lot], t: int, policy: ReleasePolicy) -> Line:
    """The line at t after the `swept` lots (expired or spent at t) leave it."""
    gone_wei = sum(line_term(lot, t, policy) for lot in swept)
    gone_rate = sum(release_terms(lot.amount, lot.start, lot.expiry, policy)[1] for lot in swept)
    return line.moved(t, -gone_wei, -gone_rate)


def line_with(line: Line, lot: Lot, policy: ReleasePolicy) -> Line:
    """The line after a new lot (deposited at its start, nothing used) joins it."""
    initial, rate = release_terms(lot.amount, lot.start, lot.expiry, policy)
    return line.moved(lot.start, initial, rate)


def charge_order(lots: Iterable[Lot]) -> Tuple[Lot, ...]:
    """Earliest expiry first, ties oldest first; equal keys keep the order given (the
    vault keeps lots in this order, equal keys in deposit order)."""
    return tuple(sorted(lots, key=lambda lot: (lot.expiry, lot.start)))


def allocate_charge(
    lots: Sequence[Lot], fee_wei: int, t: int, policy: ReleasePolicy
) -> Tuple[Tuple[int, int], ...]:
    """Split a fee over `lots` (in charge order): ((slot, amount_wei), ...).

    Raises InsufficientCredit (and allocates nothing) if the lots cannot cover the fee.
    """
    require(fee_wei >= 0, fee_wei)
    allocation = []
    remaining_wei = fee_wei
    for lot in lots:
        if remaining_wei == 0:
            break
        take = min(lot_available(lot, t, policy), remaining_wei)
        if take > 0:
            allocation.append((lot.slot, take))
            remaining_wei -= take
    if remaining_wei:
        raise InsufficientCredit(account_available(lots, t, policy), fee_wei)
    require(sum(amount for _, amount in allocation) == fee_wei, allocation)
    return tuple(allocation)


def apply_allocation(
    lots: Sequence[Lot], allocation: Sequence[Tuple[int, int]]
) -> Tuple[Lot, ...]:
    """The lots after an allocation was charged (same order as given)."""
    taken = dict(allocation)
    return tuple(
        Lot(lot.slot, lot.amount, lot.used + taken[lot.slot], lot.start, lot.expiry)
        if lot.slot in taken
        else lot
        for lot in lots
    )


def balance_status(available_wei: int, low_balance_wei: int) -> Status:
    """The status of an open, unfrozen account with an unexpired lot."""
    require(available_wei >= 0, available_wei)
    if available_wei == 0:
        return Status.EXHAUSTED
    if available_wei < low_balance_wei:
        return Status.LOW
    return Status.ACTIVE


def account_status(
    opened: bool,
    frozen: bool,
    all_expired: bool,
    available_wei: int,
    low_balance_wei: int,
) -> Status:
    """Checked in order: NONE, FROZEN, EXPIRED (no live lot with t < expiry), EXHAUSTED,
    LOW, ACTIVE."""
    if not opened:
        return Status.NONE
    if frozen:
        return Status.FROZEN
    if all_expired:
        return Status.EXPIRED
    return balance_status(available_wei, low_balance_wei)


def release_time(
    lots: Sequence[Lot], required_wei: int, t: int, policy: ReleasePolicy
) -> Optional[int]:
    """Earliest block time >= t at which the lots make required_wei available.

    None if that never happens (lots expire or are used up first). Between two expiries
    the set of unexpired lots is fixed and availability only grows, so a binary search per
    interval finds the answer exactly. Off the charge path (refusal messages, views).
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
