"""Property and example tests for fee_plugin/layout.py against contracts/LAYOUT.md (v3).

Bit positions are taken from the LAYOUT.md tables (transcribed below as data, and checked
against the document's text) and the words are rebuilt by hand, so a drift between the
packing code and the spec shows up here.
"""
import re
from pathlib import Path

import pytest
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from fee_plugin import layout
from fee_plugin.layout import (
    Head,
    LotWord,
    Totals,
    account_base_slot,
    chain_slots,
    head0_slot,
    head1_slot,
    link,
    lot_slot,
    pack_head,
    pack_lot,
    pack_totals,
    unpack_head,
    unpack_lot,
    unpack_totals,
)
from fee_plugin.lots import InvariantError, Line, Lot

WORD = 1 << 256
LAYOUT_MD = Path(__file__).resolve().parent.parent / "contracts" / "LAYOUT.md"

# (field, low bit, high bit) transcribed from the LAYOUT.md tables; bit 0 = least significant.
LOT_TABLE = (("amount", 172, 255), ("used", 88, 171), ("start", 48, 87), ("expiry", 8, 47), ("next", 0, 7))
HEAD0_TABLE = (("available", 166, 255), ("rate", 76, 165), ("anchor", 36, 75), ("first", 28, 35),
               ("spent", 20, 27), ("status", 12, 19), ("flags", 4, 11))
HEAD0_RESERVED = (0, 3)
HEAD1_TABLE = (("deposited", 160, 255), ("expired", 64, 159), ("lastExpiry", 24, 63))
HEAD1_RESERVED = (0, 23)


def _width(low, high):
    return high - low + 1


def _lot_fields(word: LotWord):
    lot = word.lot
    return {"amount": lot.amount, "used": lot.used, "start": lot.start, "expiry": lot.expiry, "next": word.next}


def _head_fields(head: Head):
    return {"available": head.line.available, "rate": head.line.rate, "anchor": head.line.anchor,
            "first": head.first, "spent": head.spent, "status": head.status, "flags": head.flags}


def _totals_fields(totals: Totals):
    return {"deposited": totals.deposited, "expired": totals.expired, "lastExpiry": totals.last_expiry}


def _by_hand(fields, table):
    return sum(fields[name] << low for name, low, _ in table)


# ---------------------------------------------------------------------------- strategies

def _edge_int(limit):
    return st.one_of(st.sampled_from(sorted({0, 1, 2, limit - 2, limit - 1})),
                     st.integers(0, min(limit - 1, 50)), st.integers(0, limit - 1))


@st.composite
def lot_words(draw):
    slot = draw(st.integers(0, layout.LOTS_CAPACITY - 1))
    amount = draw(st.one_of(st.integers(1, 20), st.just(layout.AMOUNT_LIMIT - 1),
                            st.integers(1, layout.AMOUNT_LIMIT - 1)))
    used = draw(st.one_of(st.just(0), st.just(amount), st.integers(0, amount)))
    expiry = draw(st.one_of(st.integers(1, 50), st.just(layout.TIME_LIMIT - 1),
                            st.integers(1, layout.TIME_LIMIT - 1)))
    start = draw(st.one_of(st.just(0), st.just(expiry - 1), st.integers(0, expiry - 1)))
    return LotWord(Lot(slot, amount, used, start, expiry), draw(st.integers(0, layout.LOTS_CAPACITY)))


heads = st.builds(
    Head,
    line=st.builds(Line, available=_edge_int(1 << layout.LINE_BITS), rate=_edge_int(1 << layout.LINE_BITS),
                   anchor=_edge_int(layout.TIME_LIMIT)),
    first=st.integers(0, layout.LOTS_CAPACITY), spent=st.integers(0, layout.LOTS_CAPACITY),
    status=_edge_int(256), flags=_edge_int(256),
)
totals = st.builds(Totals, deposited=_edge_int(layout.TOTAL_LIMIT), expired=_edge_int(layout.TOTAL_LIMIT),
                   last_expiry=_edge_int(layout.TIME_LIMIT))
addresses = st.one_of(st.sampled_from([b"\x00" * 20, b"\xff" * 20, b"\x00" * 19 + b"\x01"]),
                      st.binary(min_size=20, max_size=20))


# ---------------------------------------------------------------------------- the tables

@pytest.mark.parametrize("table", [LOT_TABLE, HEAD0_TABLE + (("reserved",) + HEAD0_RESERVED,),
                                   HEAD1_TABLE + (("reserved",) + HEAD1_RESERVED,)])
def test_spec_tables_tile_the_256_bit_word_exactly(table):
    bits = [bit for _, low, high in table for bit in range(low, high + 1)]
    assert sorted(bits) == list(range(256))


def test_transcribed_tables_match_the_document():
    text = LAYOUT_MD.read_text()
    for name, low, high in LOT_TABLE + HEAD0_TABLE + HEAD1_TABLE:
        assert re.search(rf"^\| {name} \| {low}\.\.{high} \| {_width(low, high)} \|", text, re.M), name


def test_spec_widths_match_layout_constants():
    widths = {name: _width(lo, hi) for name, lo, hi in LOT_TABLE + HEAD0_TABLE + HEAD1_TABLE}
    assert widths["amount"] == widths["used"] == layout.AMOUNT_BITS == 84
    assert widths["start"] == widths["expiry"] == widths["anchor"] == widths["lastExpiry"] == layout.TIME_BITS
    assert widths["available"] == widths["rate"] == layout.LINE_BITS == 90
    assert widths["deposited"] == widths["expired"] == layout.TOTAL_BITS == 96
    # Any 64 lots' amounts (and so the line's value and rate) fit the line fields.
    assert layout.LOTS_CAPACITY * (layout.AMOUNT_LIMIT - 1) < 1 << layout.LINE_BITS
    assert widths["next"] == widths["first"] == widths["spent"] == 8 and layout.LOTS_CAPACITY < 256


def test_top_level_slot_numbers_follow_declaration_order():
    assert (layout.SLOT_ACCOUNTS, layout.SLOT_OPERATOR, layout.SLOT_TREASURY, layout.SLOT_LOT_VALIDITY,
            layout.SLOT_MIN_DEPOSIT, layout.SLOT_MAX_LIVE_LOTS, layout.SLOT_LOW_BALANCE,
            layout.SLOT_CONSUMPTION_MODE, layout.SLOT_INITIAL_RELEASE_BPS) == tuple(range(9))


# ---------------------------------------------------------------------------- words

@given(lot_words())
def test_lot_word_matches_the_table_by_hand_and_round_trips(word):
    packed = pack_lot(word)
    assert packed == _by_hand(_lot_fields(word), LOT_TABLE) and 0 < packed < WORD
    assert unpack_lot(word.lot.slot, packed) == word


@given(heads)
def test_head0_matches_the_table_by_hand_and_round_trips(head):
    packed = pack_head(head)
    assert packed == _by_hand(_head_fields(head), HEAD0_TABLE) and packed < WORD
    assert unpack_head(packed) == head


@given(totals)
def test_head1_matches_the_table_by_hand_and_round_trips(value):
    packed = pack_totals(value)
    assert packed == _by_hand(_totals_fields(value), HEAD1_TABLE) and packed < WORD
    assert unpack_totals(packed) == value


def test_lot_word_example_by_hand():
    word = LotWord(Lot(3, amount=0xABCDEF, used=0x1234, start=1_700_000_000, expiry=1_702_592_000), next=5)
    expected = (0xABCDEF << 172) + (0x1234 << 88) + (1_700_000_000 << 48) + (1_702_592_000 << 8) + 5
    assert pack_lot(word) == expected and unpack_lot(3, expected) == word


@pytest.mark.parametrize("bit", range(0, 4))
def test_head0_reserved_bits_are_rejected(bit):
    with pytest.raises(InvariantError, match="reserved bits of head0"):
        unpack_head(pack_head(Head()) | 1 << bit)


@pytest.mark.parametrize("bit", range(0, 24))
def test_head1_reserved_bits_are_rejected(bit):
    with pytest.raises(InvariantError, match="reserved bits of head1"):
        unpack_totals(1 << bit)


def test_a_free_lot_word_is_not_a_lot():
    with pytest.raises(InvariantError, match="free"):
        unpack_lot(0, 0)


@given(st.integers(1, WORD - 1), st.integers(0, 63))
@settings(max_examples=80)
def test_any_nonzero_lot_word_either_rejects_or_round_trips(word, slot):
    try:
        decoded = unpack_lot(slot, word)
    except InvariantError:
        return
    assert pack_lot(decoded) == word


def test_head_flags_decode_opened_and_frozen():
    assert (Head(flags=1).opened, Head(flags=1).frozen) == (True, False)
    assert (Head(flags=3).opened, Head(flags=3).frozen) == (True, True)
    assert (Head(flags=2).opened, Head(flags=2).frozen) == (False, True)


@pytest.mark.parametrize("fields", [{"first": 65}, {"spent": -1}, {"status": 256}, {"flags": -1}])
def test_head_fields_out_of_range_are_rejected(fields):
    with pytest.raises(InvariantError):
        Head(**fields)


@pytest.mark.parametrize("fields", [{"deposited": layout.TOTAL_LIMIT}, {"expired": -1},
                                    {"last_expiry": layout.TIME_LIMIT}])
def test_totals_out_of_range_are_rejected(fields):
    with pytest.raises(InvariantError):
        Totals(**fields)


# ---------------------------------------------------------------------------- chains

def test_links_are_slot_plus_one_and_zero_ends_a_chain():
    assert link(0) == 1 and link(63) == 64 and layout.NO_LOT == 0
    nexts = {4: link(0), 0: link(7), 7: layout.NO_LOT}
    assert chain_slots(link(4), nexts.__getitem__) == (4, 0, 7)
    assert chain_slots(layout.NO_LOT, nexts.__getitem__) == ()


def test_a_cyclic_chain_is_a_corrupt_store_not_an_endless_loop():
    with pytest.raises(InvariantError, match="longer than the capacity"):
        chain_slots(link(1), lambda slot: link(1))


# ---------------------------------------------------------------------------- slots

def _keccak_pycryptodome(data: bytes) -> bytes:
    from Crypto.Hash import keccak as crypto_keccak

    return crypto_keccak.new(digest_bits=256, data=data).digest()


@given(addresses)
@settings(max_examples=40)
def test_account_base_slot_is_keccak_of_slot0_then_owner(owner):
    preimage = (0).to_bytes(32, "big") + int.from_bytes(owner, "big").to_bytes(32, "big")
    assert account_base_slot(owner) == int.from_bytes(keccak(preimage), "big")
    assert account_base_slot(owner) == int.from_bytes(_keccak_pycryptodome(preimage), "big")


def test_account_base_slot_known_vectors():
    # keccak256(uint256(0) ‖ uint256(0)): the well-known "mapping at slot 0, key 0" location.
    assert account_base_slot(b"\x00" * 20) == int(
        "ad3228b676f7d3cd4284a5443f17f1962b36e491b30a40b2405849e597ba5fb5", 16)
    # Vyper's order (slot first): equal to Solidity's "mapping at slot 1, key 0" location.
    assert account_base_slot(b"\x00" * 19 + b"\x01") == int(
        "a6eef7e35abe7026729641147f7915573c7e97b47efa546f5f6e3230263bcb49", 16)


@pytest.mark.parametrize("bad", [b"", b"\x00" * 19, b"\x00" * 21, b"\x00" * 32])
def test_account_base_slot_rejects_non_20_byte_owner(bad):
    with pytest.raises(InvariantError):
        account_base_slot(bad)


def test_head_and_lot_slots_are_distinct_and_contiguous():
    base = account_base_slot(b"\x12" * 20)
    keys = [head0_slot(base), head1_slot(base)] + [lot_slot(base, i) for i in range(64)]
    assert keys == list(range(base, base + 66))


@pytest.mark.parametrize("index", [-1, 64, 65])
def test_lot_slot_rejects_out_of_range_index(index):
    with pytest.raises(InvariantError):
        lot_slot(0, index)
