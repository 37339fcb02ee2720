"""The lot rules of contracts/LAYOUT.md ("Lot semantics"), re-derived from the spec text
for tests, independently of fee_plugin/lots.py; plus hypothesis strategies for lots."""
from hypothesis import assume
from hypothesis import strategies as st

from fee_plugin.lots import (
    AMOUNT_LIMIT,
    BPS_DENOMINATOR,
    LOTS_CAPACITY,
    TIME_LIMIT,
    Consumption,
    Lot,
    ReleasePolicy,
    Status,
)

UNIFORM = ReleasePolicy(Consumption.UNIFORM, 0)
UPFRONT = ReleasePolicy(Consumption.UPFRONT, 0)


def ref_rate(lot, policy):
    """Wei per second: what is left after the initial share, spread evenly, floored."""
    if policy.mode == Consumption.UPFRONT:
        return 0
    initial_share = lot.amount * policy.initial_release_bps // BPS_DENOMINATOR
    return (lot.amount - initial_share) // (lot.expiry - lot.start)


def ref_released(lot, t, policy):
    """Counted back from expiry: everything by e, `rate` wei less for each second before."""
    clamped = min(max(t, lot.start), lot.expiry)
    return lot.amount - ref_rate(lot, policy) * (lot.expiry - clamped)


def ref_available(lot, t, policy):
    if t >= lot.expiry:
        return 0
    return max(ref_released(lot, t, policy) - lot.used, 0)


def ref_account_available(lots, t, policy):
    return sum(ref_available(lot, t, policy) for lot in lots)


def ref_order_key(lot):
    return (lot.expiry, lot.start)


def ref_greedy(lots_in_order, fee, t, policy):
    out, left = [], fee
    for lot in lots_in_order:
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
upfront_policies = st.builds(ReleasePolicy, mode=st.just(Consumption.UPFRONT), initial_release_bps=BPS)

SMALL, LARGE = "small", "large"


def times(scale):
    if scale == SMALL:
        return st.integers(0, 40)
    return st.one_of(st.integers(0, 40), st.integers(0, TIME_LIMIT - 1), st.just(TIME_LIMIT - 1))


def amounts(scale):
    if scale == SMALL:
        return st.integers(1, 30)
    return st.one_of(st.integers(1, 30), st.integers(1, AMOUNT_LIMIT - 1), st.just(AMOUNT_LIMIT - 1))


@st.composite
def lot_at(draw, scale, slot, policy, t0):
    """A valid lot started by t0 whose used never exceeds what was released by t0."""
    a, b = draw(times(scale)), draw(times(scale))
    assume(a != b)
    start, expiry = min(a, b), max(a, b)
    assume(start <= t0)
    amount = draw(amounts(scale))
    cap = ref_released(Lot(slot, amount, 0, start, expiry), min(t0, expiry - 1), policy)
    used = draw(st.one_of(st.just(0), st.just(cap), st.integers(0, cap)))
    return Lot(slot, amount, used, start, expiry)


@st.composite
def scenarios(draw, policy_strategy=policies, scale=None, max_lots=6):
    """(policy, t0, lots in charge order): lots consistent with time t0."""
    scale = scale or draw(st.sampled_from([SMALL, SMALL, LARGE]))
    policy = draw(policy_strategy)
    t0 = draw(times(scale))
    slots = draw(st.lists(st.integers(0, LOTS_CAPACITY - 1), unique=True, max_size=max_lots))
    lots = [draw(lot_at(scale, slot, policy, t0)) for slot in slots]
    return policy, t0, tuple(sorted(lots, key=ref_order_key))


@st.composite
def single_lots(draw, scale=None, policy_strategy=policies):
    scale = scale or draw(st.sampled_from([SMALL, LARGE]))
    policy = draw(policy_strategy)
    t0 = draw(times(scale))
    lot = draw(lot_at(scale, draw(st.integers(0, LOTS_CAPACITY - 1)), policy, t0))
    return policy, t0, lot
