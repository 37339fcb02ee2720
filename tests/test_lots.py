"""Release and availability (fee_plugin/lots.py) against contracts/LAYOUT.md, and the O(1)
release line against the sum over lots it replaces.

The reference (tests/support/lot_reference.py) counts release back from expiry; lots.py
counts forward from the start: both must agree everywhere.
"""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fee_plugin.lots import (
    AMOUNT_LIMIT,
    BPS_DENOMINATOR,
    LINE_LIMIT,
    LOTS_CAPACITY,
    TIME_LIMIT,
    Consumption,
    InvariantError,
    Line,
    Lot,
    ReleasePolicy,
    account_available,
    is_expired,
    line_term,
    line_with,
    line_without,
    lot_available,
    release_terms,
    released,
)

from .support.lot_reference import (
    UNIFORM,
    UPFRONT,
    ref_account_available,
    ref_available,
    ref_rate,
    ref_released,
    scenarios,
    single_lots,
    uniform_policies,
    upfront_policies,
)

# ---------------------------------------------------------------------------- release


@given(single_lots(), st.data())
def test_released_matches_the_reference_everywhere(case, data):
    policy, _, lot = case
    t = data.draw(st.one_of(st.integers(max(lot.start - 3, 0), lot.expiry + 3),
                            st.integers(0, TIME_LIMIT - 1),
                            st.sampled_from([lot.start, lot.expiry - 1, lot.expiry])))
    assert released(lot, t, policy) == ref_released(lot, t, policy)


@given(single_lots(), st.data())
def test_released_is_monotonic_non_decreasing_in_t(case, data):
    policy, _, lot = case
    probe = st.one_of(st.integers(max(lot.start - 3, 0), lot.expiry + 3), st.integers(0, TIME_LIMIT - 1))
    t1, t2 = sorted((data.draw(probe), data.draw(probe)))
    assert released(lot, t1, policy) <= released(lot, t2, policy)


@given(single_lots(policy_strategy=uniform_policies), st.data())
@settings(max_examples=100)
def test_uniform_release_is_linear_at_an_integer_rate(case, data):
    """"Consumed uniformly": the same wei every second of the validity, the rounding
    remainder (less than one wei per second of validity) released at the start with R0."""
    policy, _, lot = case
    initial, rate = release_terms(lot.amount, lot.start, lot.expiry, policy)
    span = lot.expiry - lot.start
    r0 = lot.amount * policy.initial_release_bps // BPS_DENOMINATOR
    assert rate == ref_rate(lot, policy) and initial + rate * span == lot.amount
    assert r0 <= initial < r0 + span or (rate == 0 and initial == lot.amount)
    t = data.draw(st.integers(lot.start, lot.expiry - 1))
    assert released(lot, t + 1, policy) - released(lot, t, policy) == rate
    assert released(lot, t, policy) == initial + rate * (t - lot.start)


@given(single_lots(), st.integers(0, 100))
def test_released_is_the_amount_from_expiry_on_but_nothing_is_available(case, extra):
    policy, _, lot = case
    assert released(lot, lot.expiry, policy) == lot.amount
    assert released(lot, min(lot.expiry + extra, TIME_LIMIT - 1), policy) == lot.amount
    assert is_expired(lot, lot.expiry) and lot_available(lot, lot.expiry, policy) == 0


@given(single_lots(policy_strategy=upfront_policies), st.data())
def test_upfront_releases_everything_at_the_start(case, data):
    policy, _, lot = case
    t = data.draw(st.integers(0, lot.expiry - 1))
    assert release_terms(lot.amount, lot.start, lot.expiry, policy) == (lot.amount, 0)
    assert released(lot, t, policy) == lot.amount
    assert lot_available(lot, t, policy) == lot.amount - lot.used


def test_uniform_release_examples_thousand_wei_over_100_seconds():
    lot = Lot(0, amount=1000, used=0, start=100, expiry=200)
    assert [released(lot, t, UNIFORM) for t in (100, 101, 150, 199)] == [0, 10, 500, 990]
    quarter = ReleasePolicy(Consumption.UNIFORM, 2500)  # R0 250, then 7 wei/s, 50 at once
    assert released(lot, 100, quarter) == 300 and released(lot, 150, quarter) == 650
    assert lot_available(lot, 200, UNIFORM) == 0  # expired at t == expiry
    assert lot_available(lot, 199, UPFRONT) == 1000


@pytest.mark.parametrize(
    "amount,bps,start,expiry,t,expected",
    [
        (10, 0, 0, 3, 0, 1),  # 3 wei/s, the 1 wei remainder at the start
        (10, 0, 0, 3, 1, 4),
        (10, 0, 0, 3, 2, 7),
        (10, 0, 0, 3, 3, 10),
        (10, 1500, 0, 4, 0, 2),  # R0 = 1, 9 // 4 = 2 wei/s, remainder 1
        (10, 1500, 0, 4, 1, 4),
        (1, 9999, 5, 6, 5, 0),  # R0 = 0, 1 wei/s
        (1, 10_000, 5, 6, 5, 1),
        (5, 0, 0, 100, 50, 5),  # less than a wei per second: all at the start
        (AMOUNT_LIMIT - 1, 10_000, 0, TIME_LIMIT - 1, 0, AMOUNT_LIMIT - 1),
        (AMOUNT_LIMIT - 1, 0, 0, TIME_LIMIT - 1, TIME_LIMIT - 2,
         AMOUNT_LIMIT - 1 - (AMOUNT_LIMIT - 1) // (TIME_LIMIT - 1)),
    ],
)
def test_uniform_release_examples(amount, bps, start, expiry, t, expected):
    lot = Lot(0, amount, 0, start, expiry)
    assert released(lot, t, ReleasePolicy(Consumption.UNIFORM, bps)) == expected


@given(single_lots(), st.data())
def test_lot_available_is_released_minus_used_and_never_negative(case, data):
    policy, _, lot = case
    used = data.draw(st.integers(0, lot.amount))
    lot = Lot(lot.slot, lot.amount, used, lot.start, lot.expiry)
    t = data.draw(st.one_of(st.integers(0, lot.expiry), st.sampled_from([lot.start, lot.expiry - 1])))
    assert lot_available(lot, t, policy) == ref_available(lot, t, policy) >= 0


@given(scenarios(), st.integers(0, 50))
def test_account_available_is_the_sum_over_lots(case, dt):
    policy, t0, lots = case
    t = min(t0 + dt, TIME_LIMIT - 1)
    assert account_available(lots, t, policy) == ref_account_available(lots, t, policy)


# ---------------------------------------------------------------------------- lots and bounds


@pytest.mark.parametrize("fields", [
    (-1, 1, 0, 0, 1), (LOTS_CAPACITY, 1, 0, 0, 1), (0, 0, 0, 0, 1), (0, AMOUNT_LIMIT, 0, 0, 1),
    (0, 5, 6, 0, 1), (0, 5, 0, 1, 1), (0, 5, 0, 0, TIME_LIMIT),
])
def test_a_lot_out_of_bounds_is_refused_even_under_python_O(fields):
    with pytest.raises(InvariantError):
        Lot(*fields)


def test_a_line_out_of_bounds_is_refused_and_never_read_before_its_anchor():
    with pytest.raises(InvariantError):
        Line(LINE_LIMIT, 0, 0)
    with pytest.raises(InvariantError):
        Line(0, 0, TIME_LIMIT)
    with pytest.raises(InvariantError):
        Line(5, 1, 100).at(99)
    assert Line(5, 2, 100).at(110) == 25


# ---------------------------------------------------------------------------- the line


@st.composite
def line_histories(draw):
    """A policy and a random history of deposits, charges, sweeps and time jumps, with
    every lot's terms kept both on a Line and as plain lots."""
    policy = draw(st.sampled_from([UNIFORM, UPFRONT, ReleasePolicy(Consumption.UNIFORM, 1000)]))
    steps = draw(st.lists(st.tuples(st.sampled_from("dcsw"), st.integers(0, 10**6),
                                    st.integers(1, 5000)), min_size=1, max_size=40))
    return policy, steps


@given(line_histories(), st.data())
@settings(max_examples=150)
def test_the_line_equals_the_sum_over_lots_through_any_history(history, data):
    policy, steps = history
    t, line, lots = 1_000, Line(0, 0, 1_000), []
    for kind, amount, dt in steps:
        if kind == "w":
            t += dt
            continue
        expired = [lot for lot in lots if is_expired(lot, t)]
        assert line_without(line, expired, t, policy).available == ref_account_available(lots, t, policy)
        if kind == "d" and len(lots) < LOTS_CAPACITY:  # sweeps come first in the vault too
            line = line_without(line, expired, t, policy)
            lots = [lot for lot in lots if not is_expired(lot, t)]
            slot = min(set(range(LOTS_CAPACITY)) - {lot.slot for lot in lots})
            lot = Lot(slot, amount + 1, 0, t, t + dt)
            line, lots = line_with(line, lot, policy), lots + [lot]
        elif kind == "c":
            line = line_without(line, expired, t, policy)
            lots = [lot for lot in lots if not is_expired(lot, t)]
            fee = data.draw(st.integers(0, line.available))
            line, left = line.moved(t, -fee), fee
            for i, lot in enumerate(lots):
                take = min(lot_available(lot, t, policy), left)
                lots[i], left = Lot(lot.slot, lot.amount, lot.used + take, lot.start, lot.expiry), left - take
            assert left == 0
        elif kind == "s":
            line = line_without(line, expired, t, policy)
            lots = [lot for lot in lots if not is_expired(lot, t)]
        assert line.at(t) == ref_account_available(lots, t, policy)
        assert line.rate == sum(ref_rate(lot, policy) for lot in lots)


@given(single_lots(), st.data())
def test_a_lot_used_up_before_its_expiry_has_rate_zero_and_no_share_of_the_line(case, data):
    """Why moving used-up lots to the spent chain leaves the line unchanged."""
    policy, _, lot = case
    t = data.draw(st.integers(lot.start, lot.expiry - 1))
    used_up = Lot(lot.slot, lot.amount, lot.amount, lot.start, lot.expiry)
    if used_up.used <= released(used_up, t, policy):  # a charge could have used it up by t
        assert ref_rate(used_up, policy) == 0 and line_term(used_up, t, policy) == 0
