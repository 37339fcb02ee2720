"""Property and example tests for fee_plugin/layout.py against contracts/LAYOUT.md.

Bit positions are taken from the LAYOUT.md tables (transcribed below as data) and the words
are rebuilt by hand, so a drift between the packing code and the spec shows up here.
"""
import pytest
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from fee_plugin import layout
from fee_plugin.layout import (
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

WORD = 1 << 256

# (field, low bit, high bit) transcribed from the LAYOUT.md tables; bit 0 = least significant.
LOT_TABLE = (("amount", 168, 255), ("used", 80, 167), ("start", 40, 79), ("expiry", 0, 39))
HEAD0_TABLE = (("charged", 160, 255), ("available", 64, 159), ("live_mask", 0, 63))
HEAD1_TABLE = (
    ("deposited", 160, 255),
    ("expired", 64, 159),
    ("status", 56, 63),
    ("flags", 48, 55),
)
HEAD1_RESERVED = (0, 47)


def _by_hand(obj, table):
    return sum(getattr(obj, name) * 2**low for name, low, _ in table)


def _width(low, high):
    return high - low + 1


# ---------------------------------------------------------------------------- strategies

def _edge_int(limit):
    """Integers in [0, limit) biased to 0, 1, small values and the top of the range."""
    return st.one_of(
        st.sampled_from(sorted({0, 1, 2, limit - 2, limit - 1})),
        st.integers(0, min(limit - 1, 50)),
        st.integers(0, limit - 1),
    )


@st.composite
def lots(draw):
    slot = draw(st.integers(0, layout.LOTS_CAPACITY - 1))
    amount = draw(
        st.one_of(st.integers(1, 20), st.just(layout.AMOUNT_LIMIT - 1), st.integers(1, layout.AMOUNT_LIMIT - 1))
    )
    used = draw(st.one_of(st.just(0), st.just(amount), st.integers(0, amount)))
    expiry = draw(
        st.one_of(st.integers(1, 50), st.just(layout.TIME_LIMIT - 1), st.integers(1, layout.TIME_LIMIT - 1))
    )
    start = draw(st.one_of(st.just(0), st.just(expiry - 1), st.integers(0, expiry - 1)))
    return Lot(slot=slot, amount=amount, used=used, start=start, expiry=expiry)


headers = st.builds(
    Header,
    deposited=_edge_int(layout.TOTAL_LIMIT),
    charged=_edge_int(layout.TOTAL_LIMIT),
    live_mask=_edge_int(1 << 64),
    expired=_edge_int(layout.TOTAL_LIMIT),
    available=_edge_int(layout.TOTAL_LIMIT),
    status=_edge_int(256),
    flags=_edge_int(256),
)

addresses = st.one_of(
    st.sampled_from([b"\x00" * 20, b"\xff" * 20, b"\x00" * 19 + b"\x01"]),
    st.binary(min_size=20, max_size=20),
)


# ---------------------------------------------------------------------------- the tables

@pytest.mark.parametrize("table", [LOT_TABLE, HEAD0_TABLE, HEAD1_TABLE + (("reserved",) + HEAD1_RESERVED,)])
def test_spec_tables_tile_the_256_bit_word_exactly(table):
    bits = []
    for _, low, high in table:
        bits.extend(range(low, high + 1))
    assert sorted(bits) == list(range(256))


def test_spec_widths_match_layout_constants():
    widths = {name: _width(lo, hi) for name, lo, hi in LOT_TABLE + HEAD0_TABLE + HEAD1_TABLE}
    assert widths["amount"] == widths["used"] == layout.AMOUNT_BITS == 88
    assert widths["start"] == widths["expiry"] == layout.TIME_BITS == 40
    for name in ("deposited", "charged", "expired", "available"):
        assert widths[name] == layout.TOTAL_BITS == 96
    assert widths["live_mask"] == layout.LOTS_CAPACITY == 64
    assert widths["status"] == widths["flags"] == 8


def test_top_level_slot_numbers_follow_declaration_order():
    assert (
        layout.SLOT_ACCOUNTS,
        layout.SLOT_OPERATOR,
        layout.SLOT_TREASURY,
        layout.SLOT_LOT_VALIDITY,
        layout.SLOT_MIN_DEPOSIT,
        layout.SLOT_MAX_LIVE_LOTS,
        layout.SLOT_LOW_BALANCE,
        layout.SLOT_CONSUMPTION_MODE,
        layout.SLOT_INITIAL_RELEASE_BPS,
    ) == tuple(range(9))


# ---------------------------------------------------------------------------- lot word

@pytest.mark.parametrize("name,low,high", LOT_TABLE)
def test_lot_field_occupies_exactly_its_spec_bits(name, low, high):
    """A single field at its maximum (others minimal) sets exactly bits low..high."""
    fields = {"slot": 0, "amount": 1, "used": 0, "start": 0, "expiry": 1}
    top = (1 << _width(low, high)) - 1
    if name == "amount":
        fields.update(amount=top)
        baseline = 1  # expiry = 1
    elif name == "used":
        fields.update(amount=top, used=top)
        baseline = (top << 168) | 1
    elif name == "start":
        fields.update(start=top - 1, expiry=top)
        baseline = (1 << 168) | top  # amount=1, expiry=top
        word = pack_lot(Lot(**fields))
        assert word == baseline | ((top - 1) << 40)
        return
    else:  # expiry
        fields.update(expiry=top)
        baseline = 1 << 168
    word = pack_lot(Lot(**fields))
    assert word == baseline | (top << low)
    assert word ^ baseline == ((1 << (high + 1)) - 1) ^ ((1 << low) - 1)


def test_lot_word_example_by_hand():
    lot = Lot(slot=3, amount=0xABCDEF, used=0x1234, start=1_700_000_000, expiry=1_702_592_000)
    expected = (0xABCDEF << 168) + (0x1234 << 80) + (1_700_000_000 << 40) + 1_702_592_000
    assert pack_lot(lot) == expected
    assert unpack_lot(3, expected) == lot


def test_lot_word_all_fields_at_max_is_all_ones_except_start_lsb():
    top88, top40 = (1 << 88) - 1, (1 << 40) - 1
    lot = Lot(slot=63, amount=top88, used=top88, start=top40 - 1, expiry=top40)
    assert pack_lot(lot) == (WORD - 1) ^ (1 << 40)


@given(lots())
def test_lot_pack_matches_spec_table_by_hand(lot):
    word = pack_lot(lot)
    assert word == _by_hand(lot, LOT_TABLE)
    assert 0 < word < WORD  # a live lot word is never 0


@given(lots())
def test_lot_pack_unpack_round_trip(lot):
    assert unpack_lot(lot.slot, pack_lot(lot)) == lot


@given(lots())
def test_lot_unpack_reads_fields_from_spec_bits(lot):
    word = _by_hand(lot, LOT_TABLE)
    decoded = unpack_lot(lot.slot, word)
    for name, low, high in LOT_TABLE:
        assert getattr(decoded, name) == (word >> low) % (1 << _width(low, high))


@given(st.integers(0, WORD - 1), st.integers(0, 63))
@settings(max_examples=80)
def test_lot_unpack_of_any_word_either_rejects_or_round_trips(word, slot):
    try:
        lot = unpack_lot(slot, word)
    except AssertionError:
        amount, used = word >> 168, (word >> 80) & ((1 << 88) - 1)
        start, expiry = (word >> 40) & ((1 << 40) - 1), word & ((1 << 40) - 1)
        assert amount == 0 or used > amount or start >= expiry
    else:
        assert pack_lot(lot) == word


def test_free_lot_word_zero_is_not_a_valid_lot():
    with pytest.raises(AssertionError):
        unpack_lot(0, 0)


def test_lot_remaining_is_amount_minus_used():
    assert Lot(0, 10, 3, 0, 5).remaining == 7


# ---------------------------------------------------------------------------- header words

@given(headers)
def test_header_pack_unpack_round_trip(header):
    assert unpack_header(pack_head0(header), pack_head1(header)) == header


@given(headers)
def test_header_pack_matches_spec_tables_by_hand(header):
    head0, head1 = pack_head0(header), pack_head1(header)
    assert head0 == _by_hand(header, HEAD0_TABLE)
    assert head1 == _by_hand(header, HEAD1_TABLE)
    assert 0 <= head0 < WORD and 0 <= head1 < WORD
    assert head1 % (1 << 48) == 0  # reserved bits 0..47 always written as 0


@pytest.mark.parametrize("name,low,high", HEAD0_TABLE)
def test_head0_field_occupies_exactly_its_spec_bits(name, low, high):
    top = (1 << _width(low, high)) - 1
    header = Header(**{name: top})
    assert pack_head0(header) == ((1 << (high + 1)) - 1) ^ ((1 << low) - 1)
    assert pack_head1(header) == 0


@pytest.mark.parametrize("name,low,high", HEAD1_TABLE)
def test_head1_field_occupies_exactly_its_spec_bits(name, low, high):
    top = (1 << _width(low, high)) - 1
    header = Header(**{name: top})
    assert pack_head1(header) == ((1 << (high + 1)) - 1) ^ ((1 << low) - 1)
    assert pack_head0(header) == 0


def test_header_all_fields_at_max_fill_every_non_reserved_bit():
    top96, top64 = (1 << 96) - 1, (1 << 64) - 1
    header = Header(top96, top96, top64, top96, top96, 255, 255)
    assert pack_head0(header) == WORD - 1
    assert pack_head1(header) == (WORD - 1) ^ ((1 << 48) - 1)


def test_header_flags_bits_decode_opened_and_frozen():
    assert layout.FLAG_OPENED == 1 and layout.FLAG_FROZEN == 2
    head1 = (layout.FLAG_OPENED | layout.FLAG_FROZEN) << 48
    header = unpack_header(0, head1)
    assert header.opened and header.frozen
    assert not unpack_header(0, 1 << 48).frozen and unpack_header(0, 1 << 48).opened
    assert unpack_header(0, 2 << 48).frozen and not unpack_header(0, 2 << 48).opened
    assert unpack_header(0, 0) == Header()


def test_head1_each_reserved_bit_is_rejected():
    for bit in range(48):
        with pytest.raises(AssertionError, match="reserved"):
            unpack_header(0, 1 << bit)
        with pytest.raises(AssertionError, match="reserved"):
            unpack_header(WORD - 1, ((WORD - 1) ^ ((1 << 48) - 1)) | (1 << bit))
    assert unpack_header(0, 1 << 48).flags == 1  # bit 48 is the first non-reserved bit


@given(headers, st.integers(0, 47))
@settings(max_examples=40)
def test_head1_reserved_bits_are_rejected(header, bit):
    with pytest.raises(AssertionError):
        unpack_header(pack_head0(header), pack_head1(header) | (1 << bit))


@given(headers, st.integers(1, (1 << 48) - 1))
@settings(max_examples=40)
def test_head1_any_nonzero_reserved_pattern_is_rejected(header, junk):
    with pytest.raises(AssertionError):
        unpack_header(pack_head0(header), pack_head1(header) | junk)


@given(st.integers(0, (1 << 64) - 1))
@settings(max_examples=40)
def test_live_slots_lists_set_mask_bits_ascending(mask):
    slots = Header(live_mask=mask).live_slots()
    assert list(slots) == sorted(slots)
    assert sum(1 << i for i in slots) == mask


# ---------------------------------------------------------------------------- slot keys

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
        "ad3228b676f7d3cd4284a5443f17f1962b36e491b30a40b2405849e597ba5fb5", 16
    )
    # keccak256(uint256(0) ‖ uint256(1)): Vyper's order (slot first) -- equal to Solidity's
    # well-known "mapping at slot 1, key 0" location, NOT to Solidity's slot-0/key-1 one.
    assert account_base_slot(b"\x00" * 19 + b"\x01") == int(
        "a6eef7e35abe7026729641147f7915573c7e97b47efa546f5f6e3230263bcb49", 16
    )


def test_account_base_slot_and_lot_slot_for_a_real_address():
    owner = bytes.fromhex("5050a4f4b3f9338c3472dcc01a87c76a144b3c9c")
    expected = int.from_bytes(keccak(b"\x00" * 32 + b"\x00" * 12 + owner), "big")
    assert account_base_slot(owner) == expected
    assert lot_slot(expected, 5) == expected + 7


def test_account_base_slot_is_not_solidity_order():
    owner = b"\x00" * 19 + b"\x01"
    solidity = int.from_bytes(keccak((1).to_bytes(32, "big") + (0).to_bytes(32, "big")), "big")
    assert account_base_slot(owner) != solidity


@pytest.mark.parametrize("bad", [b"", b"\x00" * 19, b"\x00" * 21, b"\x00" * 32])
def test_account_base_slot_rejects_non_20_byte_owner(bad):
    with pytest.raises(AssertionError):
        account_base_slot(bad)


@given(addresses, st.integers(0, 63))
@settings(max_examples=40)
def test_head_and_lot_slot_offsets(owner, index):
    base = account_base_slot(owner)
    assert head0_slot(base) == base
    assert head1_slot(base) == base + 1
    assert lot_slot(base, index) == base + 2 + index
    assert lot_slot(base, 0) == head1_slot(base) + 1
    assert lot_slot(base, 63) == base + 65


def test_lot_slots_are_distinct_and_contiguous():
    base = account_base_slot(b"\x12" * 20)
    keys = [head0_slot(base), head1_slot(base)] + [lot_slot(base, i) for i in range(64)]
    assert keys == list(range(base, base + 66))


@pytest.mark.parametrize("index", [-1, 64, 65])
def test_lot_slot_rejects_out_of_range_index(index):
    with pytest.raises(AssertionError):
        lot_slot(0, index)


# ---------------------------------------------------------------------------- invariants

A, T, TOT = layout.AMOUNT_LIMIT, layout.TIME_LIMIT, layout.TOTAL_LIMIT


@pytest.mark.parametrize(
    "fields",
    [
        {"slot": -1},
        {"slot": 64},
        {"amount": 0},
        {"amount": -1},
        {"amount": A, "used": 0},
        {"used": -1},
        {"amount": 5, "used": 6},
        {"start": -1},
        {"start": 10, "expiry": 10},
        {"start": 11, "expiry": 10},
        {"start": 0, "expiry": T},
        {"start": T - 1, "expiry": T},
        {"start": T, "expiry": T + 1},
    ],
    ids=repr,
)
def test_lot_invariants_reject_out_of_range(fields):
    base = {"slot": 0, "amount": 5, "used": 0, "start": 0, "expiry": 10}
    base.update(fields)
    with pytest.raises(AssertionError):
        Lot(**base)


def test_lot_invariants_accept_extremes():
    Lot(slot=63, amount=A - 1, used=A - 1, start=T - 2, expiry=T - 1)
    Lot(slot=0, amount=1, used=0, start=0, expiry=1)


@pytest.mark.parametrize(
    "fields",
    [
        {"deposited": TOT},
        {"deposited": -1},
        {"charged": TOT},
        {"charged": -1},
        {"expired": TOT},
        {"expired": -1},
        {"available": TOT},
        {"available": -1},
        {"live_mask": 1 << 64},
        {"live_mask": -1},
        {"status": 256},
        {"status": -1},
        {"flags": 256},
        {"flags": -1},
    ],
    ids=repr,
)
def test_header_invariants_reject_out_of_range(fields):
    with pytest.raises(AssertionError):
        Header(**fields)


@given(lots(), st.sampled_from(["amount", "used", "start", "expiry"]))
@settings(max_examples=40)
def test_lot_field_beyond_its_width_is_rejected(lot, name):
    width = {n: _width(lo, hi) for n, lo, hi in LOT_TABLE}[name]
    fields = {"slot": lot.slot, "amount": lot.amount, "used": lot.used, "start": lot.start, "expiry": lot.expiry}
    fields[name] = fields[name] + (1 << width)
    with pytest.raises(AssertionError):
        Lot(**fields)
