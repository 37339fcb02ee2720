"""Property and example tests for fee_plugin/lots.py against contracts/LAYOUT.md ("Lot semantics").

The reference model below is written independently of lots.py: release uses Fraction floors
(fine in tests; consensus code is integer-only), charge order and greedy allocation are
re-derived from the spec text.
"""
import math
from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fee_plugin.layout import AMOUNT_LIMIT, LOTS_CAPACITY, TIME_LIMIT, Lot
from fee_plugin.lots import (
    BPS_DENOMINATOR,
    Consumption,
    InsufficientCredit,
    ReleasePolicy,
    Status,
    account_available,
    account_status,
    allocate_charge,
    apply_allocation,
    charge_order,
    is_expired,
    lot_available,
    release_time,
    released,
)

UNIFORM = ReleasePolicy(Consumption.UNIFORM, 0)
UPFRONT = ReleasePolicy(Consumption.UPFRONT, 0)

# ---------------------------------------------------------------------------- reference model


def ref_initial(amount, policy):
    return math.floor(Fraction(amount * policy.initial_release_bps, 10_000))


def ref_released(lot, t, policy):
    if policy.mode == Consumption.UPFRONT:
        return lot.amount
    r0 = ref_initial(lot.amount, policy)
    clamped = min(max(t, lot.start), lot.expiry)
    share = Fraction(clamped - lot.start, lot.expiry - lot.start)
    return math.floor(r0 + (lot.amount - r0) * share)


def ref_available(lot, t, policy):
    if t >= lot.expiry:
        return 0
    return max(ref_released(lot, t, policy) - lot.used, 0)


def ref_account_available(lots, t, policy):
    return sum(ref_available(lot, t, policy) for lot in lots)


def ref_order_key(lot):
    return (lot.expiry, lot.start, lot.slot)


def ref_greedy(lots, fee, t, policy):
    out, left = [], fee
    for lot in sorted(lots, key=ref_order_key):
        take = min(ref_available(lot, t, policy), left)
        if take:
            out.append((lot.slot, take))
            left -= take
    return tuple(out) if left == 0 else None


def ref_status(opened, frozen, lots, t, policy, low):
    if not opened:
        return Status.NONE
    if frozen:
        return Status.FROZEN
    if not any(t < lot.expiry for lot in lots):
        return Status.EXPIRED
    avail = ref_account_available(lots, t, policy)
    if avail == 0:
        return Status.EXHAUSTED
    if avail < low:
        return Status.LOW
    return Status.ACTIVE


# ---------------------------------------------------------------------------- strategies

BPS = st.one_of(st.sampled_from([0, 1, 3333, 5000, 9999, 10_000]), st.integers(0, BPS_DENOMINATOR))
policies = st.builds(ReleasePolicy, mode=st.sampled_from(list(Consumption)), initial_release_bps=BPS)
uniform_policies = st.builds(ReleasePolicy, mode=st.just(Consumption.UNIFORM), initial_release_bps=BPS)

SMALL, LARGE = "small", "large"


def _time(scale):
    if scale == SMALL:
        return st.integers(0, 40)
    return st.one_of(st.integers(0, 40), st.integers(0, TIME_LIMIT - 1), st.just(TIME_LIMIT - 1))


def _amount(scale):
    if scale == SMALL:
        return st.integers(1, 30)
    return st.one_of(st.integers(1, 30), st.integers(1, AMOUNT_LIMIT - 1), st.just(AMOUNT_LIMIT - 1))


@st.composite
def lot_at(draw, scale, slot, policy, t0):
    """A valid lot whose used never exceeds what was released by t0 (or by its expiry)."""
    times = _time(scale)
    a, b = draw(times), draw(times)
    assume(a != b)
    start, expiry = min(a, b), max(a, b)
    amount = draw(_amount(scale))
    bare = Lot(slot, amount, 0, start, expiry)
    cap = ref_released(bare, min(t0, expiry - 1), policy)
    used = draw(st.one_of(st.just(0), st.just(cap), st.integers(0, cap)))
    return Lot(slot, amount, used, start, expiry)


@st.composite
def scenarios(draw, policy_strategy=policies, scale=None, max_lots=6):
    """(policy, t0, lots): lots consistent with time t0 (used <= released at t0)."""
    scale = scale or draw(st.sampled_from([SMALL, SMALL, LARGE]))
    policy = draw(policy_strategy)
    t0 = draw(_time(scale))
    slots = draw(st.lists(st.integers(0, LOTS_CAPACITY - 1), unique=True, max_size=max_lots))
    lots = tuple(draw(lot_at(scale, slot, policy, t0)) for slot in slots)
    return policy, t0, lots


@st.composite
def single_lots(draw, scale=None, policy_strategy=policies):
    scale = scale or draw(st.sampled_from([SMALL, LARGE]))
    policy = draw(policy_strategy)
    t0 = draw(_time(scale))
    lot = draw(lot_at(scale, draw(st.integers(0, LOTS_CAPACITY - 1)), policy, t0))
    return policy, t0, lot


# ---------------------------------------------------------------------------- release


@given(single_lots(), st.data())
def test_released_is_monotonic_non_decreasing_in_t(case, data):
    policy, _, lot = case
    probe = st.one_of(
        st.integers(max(lot.start - 3, 0), lot.expiry + 3),
        st.integers(0, TIME_LIMIT - 1),
        st.sampled_from([lot.start, lot.expiry - 1, lot.expiry]),
    )
    t1, t2 = sorted((data.draw(probe), data.draw(probe)))
    assert released(lot, t1, policy) <= released(lot, t2, policy)
    assert released(lot, t1, policy) <= released(lot, t1 + 1, policy)


@given(single_lots(policy_strategy=uniform_policies))
def test_released_equals_initial_release_at_start_and_before(case):
    policy, _, lot = case
    r0 = lot.amount * policy.initial_release_bps // BPS_DENOMINATOR
    assert released(lot, lot.start, policy) == r0
    assert released(lot, max(lot.start - 1, 0), policy) == r0
    assert released(lot, 0, policy) == r0


@given(single_lots(), st.integers(0, 100))
def test_released_equals_amount_at_and_after_expiry(case, extra):
    policy, _, lot = case
    assert released(lot, lot.expiry, policy) == lot.amount
    assert released(lot, lot.expiry + extra, policy) == lot.amount
    # ...but at expiry the lot itself is expired: nothing can be charged from it.
    assert is_expired(lot, lot.expiry)
    assert lot_available(lot, lot.expiry, policy) == 0


@given(single_lots(), st.integers(0, TIME_LIMIT - 1))
def test_released_is_between_initial_and_amount(case, t):
    policy, _, lot = case
    r = released(lot, t, policy)
    r0 = lot.amount * policy.initial_release_bps // BPS_DENOMINATOR
    assert (r0 if policy.mode == Consumption.UNIFORM else lot.amount) <= r <= lot.amount


@given(single_lots(policy_strategy=uniform_policies), st.data())
@settings(max_examples=100)
def test_uniform_release_matches_fraction_floor(case, data):
    policy, _, lot = case
    t = data.draw(
        st.one_of(
            st.integers(lot.start, lot.expiry),
            st.integers(max(lot.start - 5, 0), min(lot.expiry + 5, TIME_LIMIT - 1)),
        )
    )
    r = released(lot, t, policy)
    assert r == ref_released(lot, t, policy)
    # Characterisation of the floor without Fraction: r is the largest value with
    # (r - R0) * (e - s) <= (A - R0) * elapsed.
    r0 = lot.amount * policy.initial_release_bps // BPS_DENOMINATOR
    assert r0 * BPS_DENOMINATOR <= lot.amount * policy.initial_release_bps < (r0 + 1) * BPS_DENOMINATOR
    span, elapsed = lot.expiry - lot.start, min(max(t, lot.start), lot.expiry) - lot.start
    assert (r - r0) * span <= (lot.amount - r0) * elapsed < (r - r0 + 1) * span


def test_uniform_release_examples_thousand_wei_over_100_seconds():
    lot = Lot(0, amount=1000, used=0, start=100, expiry=200)
    assert [released(lot, t, UNIFORM) for t in (100, 101, 150, 199)] == [0, 10, 500, 990]
    quarter = ReleasePolicy(Consumption.UNIFORM, 2500)
    assert released(lot, 100, quarter) == 250 and released(lot, 150, quarter) == 625
    assert lot_available(lot, 200, UNIFORM) == 0  # expired at t == expiry
    assert lot_available(lot, 199, UPFRONT) == 1000


@pytest.mark.parametrize(
    "amount,bps,start,expiry,t,expected",
    [
        (10, 0, 0, 3, 1, 3),  # 10 * 1/3 = 3.33 -> 3
        (10, 0, 0, 3, 2, 6),  # 6.67 -> 6
        (10, 0, 0, 3, 3, 10),
        (10, 1500, 0, 4, 1, 3),  # R0 = 1 (1.5 floored), 1 + 9 * 1/4 = 3.25 -> 3
        (10, 1500, 0, 4, 0, 1),
        (1, 9999, 5, 6, 5, 0),  # R0 = floor(0.9999) = 0
        (1, 10_000, 5, 6, 5, 1),
        (7, 5000, 100, 107, 103, 3 + 4 * 3 // 7),  # R0 = 3
        (AMOUNT_LIMIT - 1, 10_000, 0, TIME_LIMIT - 1, 0, AMOUNT_LIMIT - 1),
        (AMOUNT_LIMIT - 1, 0, 0, TIME_LIMIT - 1, TIME_LIMIT - 2, (AMOUNT_LIMIT - 1) * (TIME_LIMIT - 2) // (TIME_LIMIT - 1)),
    ],
)
def test_uniform_release_examples(amount, bps, start, expiry, t, expected):
    lot = Lot(0, amount, 0, start, expiry)
    assert released(lot, t, ReleasePolicy(Consumption.UNIFORM, bps)) == expected


@given(single_lots(policy_strategy=st.builds(ReleasePolicy, mode=st.just(Consumption.UPFRONT), initial_release_bps=BPS)), st.data())
def test_upfront_available_is_amount_minus_used_until_expiry(case, data):
    policy, _, lot = case
    t = data.draw(st.one_of(st.integers(0, lot.expiry - 1), st.sampled_from([0, lot.start, lot.expiry - 1])))
    assert released(lot, t, policy) == lot.amount
    assert lot_available(lot, t, policy) == lot.amount - lot.used
    assert lot_available(lot, lot.expiry, policy) == 0


@given(single_lots(), st.integers(0, TIME_LIMIT))
def test_expired_lot_has_zero_available(case, extra):
    policy, _, lot = case
    t = lot.expiry + extra
    assert is_expired(lot, t)
    assert lot_available(lot, t, policy) == 0
    assert account_available([lot], t, policy) == 0


@given(single_lots(), st.data())
def test_lot_available_is_released_minus_used_before_expiry(case, data):
    policy, t0, lot = case
    t = data.draw(st.integers(min(t0, lot.expiry - 1), lot.expiry - 1))
    assert not is_expired(lot, t)
    assert lot_available(lot, t, policy) == ref_released(lot, t, policy) - lot.used >= 0
    assert lot_available(lot, t, policy) <= lot.amount - lot.used


@given(single_lots(), st.data())
def test_lot_available_is_never_negative_even_when_used_exceeds_released(case, data):
    """Queried at a time before the charges (used > released(t)), availability clamps at 0."""
    policy, _, lot = case
    used = data.draw(st.integers(0, lot.amount))
    lot = Lot(lot.slot, lot.amount, used, lot.start, lot.expiry)
    t = data.draw(st.one_of(st.integers(0, lot.expiry), st.sampled_from([lot.start, lot.expiry - 1])))
    assert lot_available(lot, t, policy) == ref_available(lot, t, policy) >= 0


def test_lot_available_clamps_at_zero_example():
    lot = Lot(0, 100, 50, 0, 100)  # 50 charged, but at t=10 only 10 is released
    assert lot_available(lot, 10, UNIFORM) == 0
    assert lot_available(lot, 60, UNIFORM) == 10
    assert account_available([lot, Lot(1, 100, 0, 0, 100)], 10, UNIFORM) == 10


@given(scenarios(), st.integers(0, 50))
def test_account_available_is_sum_over_lots(case, dt):
    policy, t0, lots = case
    t = min(t0 + dt, TIME_LIMIT - 1)
    assert account_available(lots, t, policy) == ref_account_available(lots, t, policy)
    assert account_available(iter(lots), t, policy) == ref_account_available(lots, t, policy)


# ---------------------------------------------------------------------------- charge order


def test_charge_order_is_expiry_then_start_then_slot():
    lots = [
        Lot(0, 5, 0, 3, 10),
        Lot(1, 5, 0, 1, 10),
        Lot(2, 5, 0, 1, 9),
        Lot(3, 5, 0, 1, 10),
        Lot(4, 5, 0, 0, 11),
    ]
    assert [lot.slot for lot in charge_order(lots)] == [2, 1, 3, 0, 4]
    assert [lot.slot for lot in charge_order(reversed(lots))] == [2, 1, 3, 0, 4]


def test_allocate_charge_example_with_ties():
    # Same expiry for 1 and 3, same start: slot breaks the tie; 0 has a later start.
    lots = [Lot(0, 5, 0, 3, 10), Lot(1, 5, 0, 1, 10), Lot(2, 5, 0, 1, 9), Lot(3, 5, 0, 1, 10)]
    assert allocate_charge(lots, 12, 5, UPFRONT) == ((2, 5), (1, 5), (3, 2))
    assert allocate_charge(lots, 0, 5, UPFRONT) == ()
    assert allocate_charge([], 0, 5, UPFRONT) == ()


def test_allocate_charge_skips_expired_and_unreleased_lots():
    lots = [Lot(0, 10, 0, 0, 5), Lot(1, 10, 5, 0, 20), Lot(2, 10, 0, 0, 30)]
    # at t=10 lot 0 expired; lot 1 released 10*10/20 = 5, used 5 -> 0; lot 2 released 3.
    assert allocate_charge(lots, 3, 10, UNIFORM) == ((2, 3),)
    with pytest.raises(InsufficientCredit) as info:
        allocate_charge(lots, 4, 10, UNIFORM)
    assert (info.value.available_wei, info.value.required_wei) == (3, 4)


@given(scenarios(), st.data())
@settings(max_examples=100)
def test_allocate_charge_sums_to_fee_within_availability_in_charge_order(case, data):
    policy, t, lots = case
    total = ref_account_available(lots, t, policy)
    fee = data.draw(st.one_of(st.just(total), st.just(0), st.integers(0, total)))
    allocation = allocate_charge(lots, fee, t, policy)

    assert sum(take for _, take in allocation) == fee
    by_slot = {lot.slot: lot for lot in lots}
    slots = [slot for slot, _ in allocation]
    assert len(set(slots)) == len(slots)
    for slot, take in allocation:
        assert 0 < take <= ref_available(by_slot[slot], t, policy)
    # Listed in charge order.
    assert slots == sorted(slots, key=lambda s: ref_order_key(by_slot[s]))
    # A later lot is touched only if every earlier one with something available is drained.
    taken = dict(allocation)
    ordered = sorted(lots, key=ref_order_key)
    for j, later in enumerate(ordered):
        if taken.get(later.slot, 0) > 0:
            for earlier in ordered[:j]:
                assert taken.get(earlier.slot, 0) == ref_available(earlier, t, policy)
    assert allocation == ref_greedy(lots, fee, t, policy)


@given(scenarios(), st.integers(1, 2**90))
def test_allocate_charge_raises_insufficient_credit_with_the_numbers(case, excess):
    policy, t, lots = case
    total = ref_account_available(lots, t, policy)
    fee = total + excess
    with pytest.raises(InsufficientCredit) as info:
        allocate_charge(lots, fee, t, policy)
    assert info.value.available_wei == total
    assert info.value.required_wei == fee
    assert str(total) in str(info.value) and str(fee) in str(info.value)


def test_insufficient_credit_carries_numbers():
    exc = InsufficientCredit(7, 9)
    assert (exc.available_wei, exc.required_wei) == (7, 9)
    assert "7" in str(exc) and "9" in str(exc)


@given(scenarios(), st.data())
def test_apply_allocation_conserves_used_plus_fee(case, data):
    policy, t, lots = case
    total = ref_account_available(lots, t, policy)
    fee = data.draw(st.integers(0, total))
    after = apply_allocation(lots, allocate_charge(lots, fee, t, policy))
    assert sum(lot.used for lot in after) == sum(lot.used for lot in lots) + fee
    assert len(after) == len(lots)
    for before, now in zip(lots, after):
        assert (now.slot, now.amount, now.start, now.expiry) == (
            before.slot, before.amount, before.start, before.expiry,
        )
        assert before.used <= now.used <= ref_released(now, t, policy)


@given(scenarios(), st.data())
def test_apply_allocation_keeps_untouched_lots_as_they_are(case, data):
    policy, t, lots = case
    fee = data.draw(st.integers(0, ref_account_available(lots, t, policy)))
    allocation = allocate_charge(lots, fee, t, policy)
    drawn = {slot for slot, _ in allocation}
    for before, now in zip(lots, apply_allocation(lots, allocation)):
        assert (now is before) == (before.slot not in drawn)


def test_apply_allocation_example_preserves_order():
    lots = (Lot(5, 10, 1, 0, 9), Lot(2, 10, 0, 0, 9))
    after = apply_allocation(lots, ((2, 4), (5, 3)))
    assert after == (Lot(5, 10, 4, 0, 9), Lot(2, 10, 4, 0, 9))
    assert apply_allocation(lots, ()) == lots


# ---------------------------------------------------------------------------- status


def test_status_numeric_values_are_abi():
    assert [int(s) for s in (Status.NONE, Status.ACTIVE, Status.LOW, Status.EXHAUSTED, Status.EXPIRED, Status.FROZEN)] == [0, 1, 2, 3, 4, 5]


LIVE = (Lot(0, 100, 0, 0, 100),)  # upfront: 100 available before t=100


@pytest.mark.parametrize(
    "opened,frozen,lots,t,low,expected",
    [
        (False, False, LIVE, 10, 0, Status.NONE),
        (False, True, LIVE, 10, 0, Status.NONE),  # NONE wins over FROZEN
        (True, True, LIVE, 10, 0, Status.FROZEN),
        (True, True, LIVE, 200, 0, Status.FROZEN),  # FROZEN wins over EXPIRED
        (True, False, LIVE, 100, 0, Status.EXPIRED),  # t == expiry counts as expired
        (True, False, (), 10, 0, Status.EXPIRED),  # no live lot at all
        (True, False, (Lot(0, 100, 100, 0, 100),), 100, 0, Status.EXPIRED),  # EXPIRED over EXHAUSTED
        (True, False, (Lot(0, 100, 100, 0, 100),), 99, 0, Status.EXHAUSTED),
        (True, False, (Lot(0, 100, 100, 0, 100),), 99, 10**9, Status.EXHAUSTED),  # over LOW
        (True, False, LIVE, 99, 101, Status.LOW),
        (True, False, LIVE, 99, 100, Status.ACTIVE),  # LOW is strict: available < lowBalance
        (True, False, LIVE, 0, 0, Status.ACTIVE),
        (True, False, (Lot(0, 100, 0, 0, 100), Lot(1, 5, 0, 0, 50)), 60, 0, Status.ACTIVE),
    ],
)
def test_account_status_precedence_examples(opened, frozen, lots, t, low, expected):
    assert account_status(opened, frozen, lots, t, UPFRONT, low) == expected


def test_account_status_exhausted_when_nothing_released_yet():
    lot = Lot(0, 100, 0, 10, 110)  # uniform, bps 0: nothing released at start
    assert account_status(True, False, [lot], 10, UNIFORM, 0) == Status.EXHAUSTED
    assert account_status(True, False, [lot], 11, UNIFORM, 0) == Status.ACTIVE
    assert account_status(True, False, [lot], 11, UNIFORM, 2) == Status.LOW


@given(scenarios(), st.booleans(), st.booleans(), st.integers(0, 60), st.data())
def test_account_status_follows_precedence(case, opened, frozen, dt, data):
    policy, t0, lots = case
    t = min(t0 + dt, TIME_LIMIT - 1)
    avail = ref_account_available(lots, t, policy)
    low = data.draw(st.one_of(st.sampled_from([0, avail, avail + 1]), st.integers(0, 2**90)))
    expected = ref_status(opened, frozen, lots, t, policy, low)
    assert account_status(opened, frozen, lots, t, policy, low) == expected
    # The caller's precomputed available balance (plan_charge's fast path) changes nothing.
    assert account_status(opened, frozen, lots, t, policy, low, avail) == expected


# ---------------------------------------------------------------------------- release_time


def _check_release_time(lots, required, t, policy, answer):
    """Check answer against the spec using only monotonicity between expiries (sound for any size)."""
    # Availability is non-decreasing between consecutive expiries, so on [t, x] its maximum is
    # reached at x or just before one of the expiries inside (t, x].
    def interval_ends(upto):
        ends = {e - 1 for e in (lot.expiry for lot in lots) if t < e <= upto}
        return sorted(ends | {upto})

    if answer is None:
        for end in interval_ends(TIME_LIMIT - 1):
            assert ref_account_available(lots, end, policy) < required
        return
    assert t <= answer < TIME_LIMIT
    assert ref_account_available(lots, answer, policy) >= required
    if answer > t:
        assert ref_account_available(lots, answer - 1, policy) < required
        for end in interval_ends(answer - 1):
            assert ref_account_available(lots, end, policy) < required


@given(scenarios(), st.data())
@settings(max_examples=100)
def test_release_time_is_minimal_time_with_enough_available(case, data):
    policy, t, lots = case
    ceiling = sum(lot.amount - lot.used for lot in lots)
    now = ref_account_available(lots, t, policy)
    required = data.draw(
        st.one_of(
            st.integers(0, ceiling + 1),
            st.sampled_from([0, now, now + 1, ceiling, ceiling + 1]),
        )
    )
    answer = release_time(lots, required, t, policy)
    _check_release_time(lots, required, t, policy, answer)
    if required <= now:
        assert answer == t
    if required > ceiling:
        assert answer is None


@given(scenarios(scale=SMALL, max_lots=5), st.integers(0, 80), st.integers(0, 40))
@settings(max_examples=150)
def test_release_time_matches_brute_force_on_small_times(case, required, t):
    policy, _, lots = case
    horizon = max([lot.expiry for lot in lots] + [t]) + 2  # after the last expiry nothing is available
    brute = next(
        (x for x in range(t, horizon) if ref_account_available(lots, x, policy) >= required),
        None,
    )
    if brute is None and required == 0:
        brute = t
    assert release_time(lots, required, t, policy) == brute


def test_release_time_examples():
    lot = Lot(0, 100, 0, 0, 100)  # uniform, bps 0: released(t) = t
    assert release_time([lot], 0, 0, UNIFORM) == 0
    assert release_time([lot], 37, 0, UNIFORM) == 37
    assert release_time([lot], 37, 50, UNIFORM) == 50
    assert release_time([lot], 99, 0, UNIFORM) == 99
    assert release_time([lot], 100, 0, UNIFORM) is None  # 100 only at t = expiry, when expired
    assert release_time([lot], 1, 100, UNIFORM) is None
    assert release_time([], 1, 0, UNIFORM) is None
    assert release_time([], 0, 0, UNIFORM) == 0
    # A second lot that starts later and lives longer: availability dips at the first expiry.
    lots = [Lot(0, 10, 0, 0, 10), Lot(1, 100, 0, 5, 105)]
    # t=9: lot0 gives 9, lot1 gives 4 -> 13; t=10: lot0 expired, lot1 5.
    assert release_time(lots, 13, 0, UNIFORM) == 9
    assert release_time(lots, 14, 0, UNIFORM) == 19  # only lot1 from t=10 on: t - 5 >= 14
    assert release_time(lots, 14, 10, UNIFORM) == 19
    assert release_time(lots, 5, 9, UNIFORM) == 9


def test_release_time_brute_force_two_overlapping_lots():
    account = (Lot(0, 100, 0, start=0, expiry=10), Lot(1, 30, 0, start=5, expiry=40))
    for required in range(140):
        expected = next((x for x in range(60) if ref_account_available(account, x, UNIFORM) >= required), None)
        assert release_time(account, required, 0, UNIFORM) == expected


# ---------------------------------------------------------------------------- sequences


@given(scenarios(), st.lists(st.tuples(st.integers(0, 3), st.integers(0, 40)), min_size=1, max_size=15), st.data())
@settings(max_examples=80)
def test_random_charges_and_time_jumps_keep_bounds_and_conservation(case, steps, data):
    policy, t, lots = case
    initial_used = sum(lot.used for lot in lots)
    charged = 0
    for kind, dt in steps:
        if kind == 3:  # a long jump, possibly past every expiry
            dt *= 1 + max((lot.expiry - lot.start for lot in lots), default=1) // 8
        t = min(t + dt, TIME_LIMIT - 1)
        avail = ref_account_available(lots, t, policy)
        assert account_available(lots, t, policy) == avail
        if kind == 0 and data.draw(st.booleans()):
            fee = avail + data.draw(st.integers(1, 10))
            with pytest.raises(InsufficientCredit) as info:
                allocate_charge(lots, fee, t, policy)
            assert (info.value.available_wei, info.value.required_wei) == (avail, fee)
        else:
            fee = data.draw(st.one_of(st.just(avail), st.integers(0, avail)))
            lots = apply_allocation(lots, allocate_charge(lots, fee, t, policy))
            charged += fee
            assert account_available(lots, t, policy) == avail - fee
        for lot in lots:
            assert 0 <= lot.used <= lot.amount
            assert lot.used <= released(lot, t, policy)
        assert sum(lot.used for lot in lots) - initial_used == charged


# ------------------------------------------------------------- plan_charge's available memo


@given(scenarios(), st.data())
def test_charged_account_memo_is_the_available_balance_and_not_part_of_the_record(case, data):
    from fee_plugin.layout import FLAG_OPENED, Header
    from fee_plugin.vault import FeeAccount, plan_charge

    policy, t, lots = case
    assume(lots and sum(lot.amount for lot in lots) < AMOUNT_LIMIT)
    header = Header(
        deposited=sum(lot.amount for lot in lots),
        charged=sum(lot.used for lot in lots),
        live_mask=sum(1 << lot.slot for lot in lots),
        flags=FLAG_OPENED,
    )
    before = FeeAccount(b"\x01" * 20, header, tuple(sorted(lots, key=lambda lot: lot.slot)))
    assert before.available_at(t, policy) == ref_account_available(lots, t, policy)
    fee = data.draw(st.integers(0, ref_account_available(lots, t, policy)))
    charge, after = plan_charge(before, fee, t, policy, low_balance_wei=0)
    fresh = FeeAccount(after.owner, after.header, after.lots)  # no memo
    assert after == fresh and hash(after) == hash(fresh)
    assert after.available_at(t, policy) == fresh.available_at(t, policy)
    assert after.available_at(t, policy) == charge.available_after_wei == after.header.available
    assert after.available_at(t, policy) == ref_account_available(lots, t, policy) - fee
    later = min(t + data.draw(st.integers(1, 10**6)), TIME_LIMIT - 1)  # another block time
    assert after.available_at(later, policy) == ref_account_available(after.lots, later, policy)
