"""Properties of the pure lot math (fee_plugin/lots.py) and the storage codec."""
from fractions import Fraction

import pytest
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from fee_plugin.layout import (
    AMOUNT_LIMIT,
    TIME_LIMIT,
    TOTAL_LIMIT,
    Header,
    Lot,
    account_base_slot,
    lot_slot,
    pack_head0,
    pack_head1,
    pack_lot,
    unpack_header,
    unpack_lot,
)
from fee_plugin.lots import (
    Consumption,
    InsufficientCredit,
    ReleasePolicy,
    Status,
    account_available,
    account_status,
    allocate_charge,
    apply_allocation,
    charge_order,
    lot_available,
    release_time,
    released,
)

UNIFORM = ReleasePolicy(Consumption.UNIFORM, 0)
T = 1_000_000

policies = st.builds(
    ReleasePolicy,
    st.sampled_from([Consumption.UNIFORM, Consumption.UPFRONT]),
    st.one_of(st.just(0), st.integers(0, 10_000)),
)


@st.composite
def lots(draw, t=T, max_lots=6):
    """Live lots as they can exist at time t (started at or before t, used <= released(t))."""
    policy = draw(policies)
    n = draw(st.integers(0, max_lots))
    slots = draw(st.lists(st.integers(0, 63), min_size=n, max_size=n, unique=True))
    out = []
    for slot in sorted(slots):
        amount = draw(st.one_of(st.integers(1, 50), st.integers(1, AMOUNT_LIMIT - 1)))
        start = t - draw(st.one_of(st.integers(0, 10), st.integers(0, 10_000)))
        expiry = start + draw(st.one_of(st.integers(1, 20), st.integers(1, 20_000)))
        cap = released(Lot(slot, amount, 0, start, expiry), min(t, expiry), policy)
        used = draw(st.integers(0, cap))
        out.append(Lot(slot, amount, used, start, expiry))
    return policy, tuple(out)


# -- layout ------------------------------------------------------------------------------


@given(
    st.integers(0, 63),
    st.integers(1, AMOUNT_LIMIT - 1),
    st.data(),
)
def test_lot_word_round_trips(slot, amount, data):
    used = data.draw(st.integers(0, amount))
    start = data.draw(st.integers(0, TIME_LIMIT - 2))
    expiry = data.draw(st.integers(start + 1, TIME_LIMIT - 1))
    lot = Lot(slot, amount, used, start, expiry)
    word = pack_lot(lot)
    assert word < 2**256 and word != 0
    assert unpack_lot(slot, word) == lot


def test_lot_word_bit_positions_match_layout_md():
    lot = Lot(3, amount=0xBB, used=0xAA, start=0xCC, expiry=0xDD)
    assert pack_lot(lot) == (0xBB << 168) | (0xAA << 80) | (0xCC << 40) | 0xDD


@given(
    st.integers(0, TOTAL_LIMIT - 1),
    st.integers(0, TOTAL_LIMIT - 1),
    st.integers(0, 2**64 - 1),
    st.integers(0, TOTAL_LIMIT - 1),
    st.integers(0, TOTAL_LIMIT - 1),
    st.integers(0, 255),
    st.integers(0, 255),
)
def test_header_words_round_trip(deposited, charged, mask, expired, available, status, flags):
    header = Header(deposited, charged, mask, expired, available, status, flags)
    assert unpack_header(pack_head0(header), pack_head1(header)) == header
    assert pack_head0(header) == (deposited << 160) | (charged << 64) | mask
    assert pack_head1(header) == (expired << 160) | (available << 64) | (status << 56) | (flags << 48)


def test_reserved_head1_bits_are_rejected():
    with pytest.raises(AssertionError, match="reserved"):
        unpack_header(0, 1)


def test_account_base_slot_is_vyper_hashmap_location():
    owner = bytes.fromhex("5050a4f4b3f9338c3472dcc01a87c76a144b3c9c")
    expected = keccak(b"\x00" * 32 + b"\x00" * 12 + owner)
    assert account_base_slot(owner) == int.from_bytes(expected, "big")
    assert lot_slot(account_base_slot(owner), 5) == account_base_slot(owner) + 7


@pytest.mark.parametrize(
    "fields",
    [
        dict(slot=64, amount=1, used=0, start=0, expiry=1),
        dict(slot=0, amount=0, used=0, start=0, expiry=1),
        dict(slot=0, amount=AMOUNT_LIMIT, used=0, start=0, expiry=1),
        dict(slot=0, amount=5, used=6, start=0, expiry=1),
        dict(slot=0, amount=5, used=0, start=9, expiry=9),
        dict(slot=0, amount=5, used=0, start=0, expiry=TIME_LIMIT),
    ],
)
def test_lot_bounds_are_asserted(fields):
    with pytest.raises(AssertionError):
        Lot(**fields)


# -- release --------------------------------------------------------------------------


@given(lots(), st.integers(0, 30_000), st.integers(0, 30_000))
def test_release_is_monotonic_and_bounded(policy_lots, dt1, dt2):
    policy, account = policy_lots
    for lot in account:
        a, b = sorted((lot.start + dt1, lot.start + dt2))
        assert released(lot, a, policy) <= released(lot, b, policy) <= lot.amount


@given(lots())
def test_release_matches_exact_rational_floor(policy_lots):
    policy, account = policy_lots
    for lot in account:
        for t in (lot.start, (lot.start + lot.expiry) // 2, lot.expiry - 1):
            if policy.mode == Consumption.UPFRONT:
                assert released(lot, t, policy) == lot.amount
                continue
            r0 = lot.amount * policy.initial_release_bps // 10_000
            exact = r0 + Fraction((lot.amount - r0) * (t - lot.start), lot.expiry - lot.start)
            assert released(lot, t, policy) == int(exact)  # floor for non-negatives


def test_uniform_release_examples():
    lot = Lot(0, amount=1000, used=0, start=100, expiry=200)
    assert [released(lot, t, UNIFORM) for t in (100, 101, 150, 199)] == [0, 10, 500, 990]
    quarter = ReleasePolicy(Consumption.UNIFORM, 2500)
    assert released(lot, 100, quarter) == 250 and released(lot, 150, quarter) == 625
    assert lot_available(lot, 200, UNIFORM) == 0  # expired at t == expiry
    assert lot_available(lot, 199, ReleasePolicy(Consumption.UPFRONT, 0)) == 1000


# -- charging -------------------------------------------------------------------------


@given(lots(), st.data())
def test_allocation_is_exact_bounded_and_in_order(policy_lots, data):
    policy, account = policy_lots
    available = account_available(account, T, policy)
    fee = data.draw(st.integers(0, available))
    allocation = allocate_charge(account, fee, T, policy)
    assert sum(amount for _, amount in allocation) == fee
    by_slot = {lot.slot: lot for lot in account}
    for slot, amount in allocation:
        assert 0 < amount <= lot_available(by_slot[slot], T, policy)
    # Earliest expiry first: a lot is drawn only once every earlier lot is drained.
    order = [lot.slot for lot in charge_order(account) if lot_available(lot, T, policy) > 0]
    drawn = [slot for slot, _ in allocation]
    assert drawn == order[: len(drawn)]
    for slot, amount in allocation[:-1]:
        assert amount == lot_available(by_slot[slot], T, policy)
    after = apply_allocation(account, allocation)
    assert sum(l.used for l in after) == sum(l.used for l in account) + fee
    assert account_available(after, T, policy) == available - fee


@given(lots(), st.integers(1, 10**6))
def test_overdraft_raises_with_available_and_required(policy_lots, extra):
    policy, account = policy_lots
    available = account_available(account, T, policy)
    with pytest.raises(InsufficientCredit) as err:
        allocate_charge(account, available + extra, T, policy)
    assert (err.value.available_wei, err.value.required_wei) == (available, available + extra)


def test_charge_order_ties_break_by_start_then_slot():
    a = Lot(5, 10, 0, start=1, expiry=50)
    b = Lot(2, 10, 0, start=1, expiry=50)
    c = Lot(0, 10, 0, start=2, expiry=50)
    d = Lot(1, 10, 0, start=0, expiry=40)
    assert [l.slot for l in charge_order([a, b, c, d])] == [1, 2, 5, 0]


@settings(max_examples=40)
@given(lots(max_lots=4), st.lists(st.tuples(st.integers(0, 500), st.integers(0, 10**30)), max_size=12))
def test_random_charges_and_time_jumps_keep_per_lot_bounds(policy_lots, steps):
    policy, account = policy_lots
    t = T
    charged_total = 0
    used_before = sum(l.used for l in account)
    for jump, wish in steps:
        t += jump
        live = tuple(l for l in account if t < l.expiry)
        fee = min(wish, account_available(live, t, policy))
        allocation = allocate_charge(live, fee, t, policy)
        account = apply_allocation(account, allocation)
        charged_total += fee
        for lot in account:
            assert 0 <= lot.used <= lot.amount
            if t < lot.expiry:
                assert lot.used <= released(lot, t, policy)
    assert sum(l.used for l in account) - used_before == charged_total


# -- status and release time -----------------------------------------------------------


def test_status_precedence():
    live = Lot(0, 100, 0, start=0, expiry=100)
    args = dict(t=50, policy=UNIFORM, low_balance_wei=60)
    assert account_status(False, False, (), **args) is Status.NONE
    assert account_status(True, True, (live,), **args) is Status.FROZEN
    assert account_status(True, False, (), **args) is Status.EXPIRED
    assert account_status(True, False, (Lot(0, 100, 0, 0, 40),), **args) is Status.EXPIRED
    assert account_status(True, False, (Lot(0, 100, 50, 0, 100),), **args) is Status.EXHAUSTED
    assert account_status(True, False, (live,), **args) is Status.LOW
    assert account_status(True, False, (live,), t=50, policy=UNIFORM, low_balance_wei=50) is Status.ACTIVE


@settings(max_examples=40)
@given(lots(max_lots=3), st.integers(1, 10**20))
def test_release_time_is_the_earliest_sufficient_time(policy_lots, required):
    policy, account = policy_lots
    when = release_time(account, required, T, policy)
    if when is None:
        horizon = max((l.expiry for l in account), default=T)
        assert all(account_available(account, t, policy) < required for t in range(T, min(horizon, T + 3000) + 1))
        return
    assert when >= T and account_available(account, when, policy) >= required
    if when > T:
        assert account_available(account, when - 1, policy) < required


def test_release_time_brute_force_small():
    account = (Lot(0, 100, 0, start=0, expiry=10), Lot(1, 30, 0, start=5, expiry=40))
    for required in range(0, 140):
        expected = next((t for t in range(0, 60) if account_available(account, t, UNIFORM) >= required), None)
        assert release_time(account, required, 0, UNIFORM) == expected
