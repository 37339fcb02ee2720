"""The vault's storage layout v3: slot numbers and packed words (see contracts/LAYOUT.md).

Pure functions, no py-evm import: the executor hook, the queries and the tests all derive
slot keys and decode words here, so the layout exists once on the Python side. The lot
math (lots.py) knows nothing of this encoding.
"""
from dataclasses import dataclass
from typing import Tuple

from eth_utils import keccak

from .lots import (
    AMOUNT_BITS,
    AMOUNT_LIMIT,
    LINE_LIMIT,
    LOTS_CAPACITY,
    TIME_BITS,
    TIME_LIMIT,
    Line,
    Lot,
    require,
)

LAYOUT_VERSION = 3

# Top-level storage slots, in the contract's declaration order.
SLOT_ACCOUNTS = 0
SLOT_OPERATOR = 1
SLOT_TREASURY = 2
SLOT_LOT_VALIDITY = 3
SLOT_MIN_DEPOSIT = 4
SLOT_MAX_LIVE_LOTS = 5
SLOT_LOW_BALANCE = 6
SLOT_CONSUMPTION_MODE = 7
SLOT_INITIAL_RELEASE_BPS = 8

HEAD0_OFFSET = 0
HEAD1_OFFSET = 1
LOTS_OFFSET = 2

LINE_BITS = 90
TOTAL_BITS = 96
TOTAL_LIMIT = 1 << TOTAL_BITS  # an account's lifetime deposits are < this
NO_LOT = 0  # a link field: 0 ends a chain, k links to lot slot k − 1

_MASK_AMOUNT = AMOUNT_LIMIT - 1
_MASK_TIME = TIME_LIMIT - 1
_MASK_LINE = (1 << LINE_BITS) - 1
_MASK_TOTAL = TOTAL_LIMIT - 1
_MASK_8 = 0xFF

FLAG_OPENED = 1
FLAG_FROZEN = 2

require(LINE_LIMIT <= 1 << LINE_BITS, "a line field holds any sum of live amounts")
require(AMOUNT_BITS * 2 + TIME_BITS * 2 + 8 == 256, "a lot is one word")


@dataclass(frozen=True)
class Head:
    """head0, the word every charge reads and writes: the release line of the lots in
    charge, the two chains' first links, the status as of the last update, the flags."""

    line: Line = Line()
    first: int = NO_LOT  # charge chain: lots that may still pay, in charge order
    spent: int = NO_LOT  # spent chain: used-up lots waiting for their expiry
    status: int = 0
    flags: int = 0

    def __post_init__(self) -> None:
        require(0 <= self.first <= LOTS_CAPACITY and 0 <= self.spent <= LOTS_CAPACITY, self)
        require(0 <= self.status <= _MASK_8 and 0 <= self.flags <= _MASK_8, self)

    @property
    def opened(self) -> bool:
        return bool(self.flags & FLAG_OPENED)

    @property
    def frozen(self) -> bool:
        return bool(self.flags & FLAG_FROZEN)


@dataclass(frozen=True)
class Totals:
    """head1, changed by deposits, grants and sweeps only (lifetime charged is derived)."""

    deposited: int = 0
    expired: int = 0  # swept remainders
    last_expiry: int = 0  # latest expiry of any lot deposited: EXPIRED from then on

    def __post_init__(self) -> None:
        require(0 <= self.deposited < TOTAL_LIMIT and 0 <= self.expired < TOTAL_LIMIT, self)
        require(0 <= self.last_expiry < TIME_LIMIT, self)


@dataclass(frozen=True)
class LotWord:
    """A stored lot and its link to the next lot of its chain."""

    lot: Lot
    next: int = NO_LOT

    def __post_init__(self) -> None:
        require(0 <= self.next <= LOTS_CAPACITY, self)


def account_base_slot(owner: bytes) -> int:
    """keccak256(uint256(SLOT_ACCOUNTS) ‖ uint256(owner)): Vyper's HashMap location."""
    require(len(owner) == 20, owner)
    return int.from_bytes(
        keccak(SLOT_ACCOUNTS.to_bytes(32, "big") + b"\x00" * 12 + owner), "big"
    )


def head0_slot(base: int) -> int:
    return base + HEAD0_OFFSET


def head1_slot(base: int) -> int:
    return base + HEAD1_OFFSET


def lot_slot(base: int, index: int) -> int:
    require(0 <= index < LOTS_CAPACITY, index)
    return base + LOTS_OFFSET + index


def link(slot: int) -> int:
    """The link field that points at lot `slot`."""
    return slot + 1


def pack_lot(word: LotWord) -> int:
    lot = word.lot
    return (lot.amount << 172) | (lot.used << 88) | (lot.start << 48) | (lot.expiry << 8) | word.next


def unpack_lot(slot: int, word: int) -> LotWord:
    require(word != 0, f"lot slot {slot} is free")
    return LotWord(
        Lot(
            slot=slot,
            amount=(word >> 172) & _MASK_AMOUNT,
            used=(word >> 88) & _MASK_AMOUNT,
            start=(word >> 48) & _MASK_TIME,
            expiry=(word >> 8) & _MASK_TIME,
        ),
        next=word & _MASK_8,
    )


def pack_head(head: Head) -> int:
    line = head.line
    return (
        (line.available << 166)
        | (line.rate << 76)
        | (line.anchor << 36)
        | (head.first << 28)
        | (head.spent << 20)
        | (head.status << 12)
        | (head.flags << 4)
    )


def unpack_head(word: int) -> Head:
    require(word & 0xF == 0, f"reserved bits of head0 set: {word:#x}")
    return Head(
        line=Line(
            available=(word >> 166) & _MASK_LINE,
            rate=(word >> 76) & _MASK_LINE,
            anchor=(word >> 36) & _MASK_TIME,
        ),
        first=(word >> 28) & _MASK_8,
        spent=(word >> 20) & _MASK_8,
        status=(word >> 12) & _MASK_8,
        flags=(word >> 4) & _MASK_8,
    )


def pack_totals(totals: Totals) -> int:
    return (totals.deposited << 160) | (totals.expired << 64) | (totals.last_expiry << 24)


def unpack_totals(word: int) -> Totals:
    require(word & ((1 << 24) - 1) == 0, f"reserved bits of head1 set: {word:#x}")
    return Totals(
        deposited=(word >> 160) & _MASK_TOTAL,
        expired=(word >> 64) & _MASK_TOTAL,
        last_expiry=(word >> 24) & _MASK_TIME,
    )


def chain_slots(first: int, next_of) -> Tuple[int, ...]:
    """Slot indexes along a chain from link `first`; `next_of(slot)` gives a lot's link.
    Bounded: a chain longer than the capacity is a corrupt store."""
    slots = []
    current = first
    while current != NO_LOT:
        require(len(slots) < LOTS_CAPACITY, "lot chain longer than the capacity")
        slots.append(current - 1)
        current = next_of(current - 1)
    return tuple(slots)
