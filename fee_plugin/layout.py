"""The vault's storage layout: slot numbers and packed words (see contracts/LAYOUT.md).

Pure functions, no py-evm import: the executor hook, the queries and the tests all derive
slot keys and decode words here, so the layout exists once on the Python side.
"""
from dataclasses import dataclass
from typing import Tuple

from eth_utils import keccak

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

LOTS_CAPACITY = 64  # lot slots per account; genesis maxLiveLots <= this
HEAD0_OFFSET = 0
HEAD1_OFFSET = 1
LOTS_OFFSET = 2

AMOUNT_BITS = 88
TIME_BITS = 40
TOTAL_BITS = 96
AMOUNT_LIMIT = 1 << AMOUNT_BITS  # a lot's amount is < this
TIME_LIMIT = 1 << TIME_BITS  # timestamps are < this
TOTAL_LIMIT = 1 << TOTAL_BITS  # an account's lifetime deposits are < this

_MASK_AMOUNT = AMOUNT_LIMIT - 1
_MASK_TIME = TIME_LIMIT - 1
_MASK_TOTAL = TOTAL_LIMIT - 1
_MASK_64 = (1 << 64) - 1
_MASK_8 = 0xFF

FLAG_OPENED = 1
FLAG_FROZEN = 2


@dataclass(frozen=True)
class Lot:
    """One deposit: its quota, what was charged from it and its validity window."""

    slot: int
    amount: int
    used: int
    start: int
    expiry: int

    def __post_init__(self) -> None:
        assert 0 <= self.slot < LOTS_CAPACITY, self
        assert 0 < self.amount < AMOUNT_LIMIT, self
        assert 0 <= self.used <= self.amount, self
        assert 0 <= self.start < self.expiry < TIME_LIMIT, self

    @property
    def remaining(self) -> int:
        return self.amount - self.used


@dataclass(frozen=True)
class Header:
    """The account's two header words, decoded."""

    deposited: int = 0
    charged: int = 0
    live_mask: int = 0
    expired: int = 0
    available: int = 0
    status: int = 0
    flags: int = 0

    def __post_init__(self) -> None:
        for name in ("deposited", "charged", "expired", "available"):
            assert 0 <= getattr(self, name) < TOTAL_LIMIT, (name, self)
        assert 0 <= self.live_mask <= _MASK_64, self
        assert 0 <= self.status <= _MASK_8 and 0 <= self.flags <= _MASK_8, self

    @property
    def opened(self) -> bool:
        return bool(self.flags & FLAG_OPENED)

    @property
    def frozen(self) -> bool:
        return bool(self.flags & FLAG_FROZEN)

    def live_slots(self) -> Tuple[int, ...]:
        """Slot indexes of live lots, ascending (deterministic iteration order)."""
        mask = self.live_mask
        return tuple(i for i in range(LOTS_CAPACITY) if mask >> i & 1)


def account_base_slot(owner: bytes) -> int:
    """keccak256(uint256(SLOT_ACCOUNTS) ‖ uint256(owner)): Vyper's HashMap location."""
    assert len(owner) == 20, owner
    return int.from_bytes(
        keccak(SLOT_ACCOUNTS.to_bytes(32, "big") + b"\x00" * 12 + owner), "big"
    )


def head0_slot(base: int) -> int:
    return base + HEAD0_OFFSET


def head1_slot(base: int) -> int:
    return base + HEAD1_OFFSET


def lot_slot(base: int, index: int) -> int:
    assert 0 <= index < LOTS_CAPACITY, index
    return base + LOTS_OFFSET + index


def pack_lot(lot: Lot) -> int:
    return (lot.amount << 168) | (lot.used << 80) | (lot.start << 40) | lot.expiry


def unpack_lot(slot: int, word: int) -> Lot:
    return Lot(
        slot=slot,
        amount=(word >> 168) & _MASK_AMOUNT,
        used=(word >> 80) & _MASK_AMOUNT,
        start=(word >> 40) & _MASK_TIME,
        expiry=word & _MASK_TIME,
    )


# head0 holds what every charge changes, head1 what only deposits, sweeps, freezes and
# status moves change: a charge then dirties head0 and the lot words it draws, not head1.

def pack_head0(header: Header) -> int:
    return (header.charged << 160) | (header.available << 64) | header.live_mask


def pack_head1(header: Header) -> int:
    return (
        (header.deposited << 160)
        | (header.expired << 64)
        | (header.status << 56)
        | (header.flags << 48)
    )


def unpack_header(head0: int, head1: int) -> Header:
    assert head1 & ((1 << 48) - 1) == 0, f"reserved bits of head1 set: {head1:#x}"
    return Header(
        deposited=(head1 >> 160) & _MASK_TOTAL,
        charged=(head0 >> 160) & _MASK_TOTAL,
        live_mask=head0 & _MASK_64,
        expired=(head1 >> 64) & _MASK_TOTAL,
        available=(head0 >> 64) & _MASK_TOTAL,
        status=(head1 >> 56) & _MASK_8,
        flags=(head1 >> 48) & _MASK_8,
    )
