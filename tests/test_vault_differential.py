"""Differential: the vault contract and fee_plugin.lots / fee_plugin.layout agree exactly.

Random accounts (packed lot words and header words) and random policies (mode, bps,
lowBalance, maxLiveLots, ...) are written straight into the vault's storage in a throw-away
state built off the head of a stock-py-evm chain (tests/vault_harness.py); the contract then
runs in that very state at the drawn block time and its answers are compared with the Python.
"""
from hypothesis import event, given, settings
from hypothesis import strategies as st

from fee_plugin.layout import (
    AMOUNT_LIMIT,
    FLAG_FROZEN,
    FLAG_OPENED,
    LOTS_CAPACITY,
    SLOT_CONSUMPTION_MODE,
    SLOT_INITIAL_RELEASE_BPS,
    SLOT_LOT_VALIDITY,
    SLOT_LOW_BALANCE,
    SLOT_MAX_LIVE_LOTS,
    SLOT_MIN_DEPOSIT,
    TIME_LIMIT,
    TOTAL_LIMIT,
    Header,
    Lot,
    account_base_slot,
    head0_slot,
    head1_slot,
    lot_slot,
    pack_head0,
    pack_head1,
    pack_lot,
)
from fee_plugin.lots import (
    BPS_DENOMINATOR,
    Consumption,
    ReleasePolicy,
    Status,
    account_available,
    account_status,
    is_expired,
    lot_available,
)

from .vault_harness import GENESIS_TIME, TREASURY, VAULT, VaultHarness, calldata

OWNER = b"\x77" * 20
OTHER = b"\x66" * 20
_HARNESS = []


def harness() -> VaultHarness:
    if not _HARNESS:
        _HARNESS.append(VaultHarness())
    return _HARNESS[0]


def hexaddr(addr: bytes) -> str:
    return "0x" + addr.hex()


# -- strategies -----------------------------------------------------------------------------

amounts = st.one_of(
    st.integers(1, 1000), st.integers(10**15, 10**19), st.integers(AMOUNT_LIMIT - 1000, AMOUNT_LIMIT - 1)
)
times = st.one_of(
    st.integers(GENESIS_TIME + 1, GENESIS_TIME + 10**7),  # the head is at GENESIS_TIME
    st.integers(TIME_LIMIT - 10**4, TIME_LIMIT - 2),
)


policies = st.builds(
    ReleasePolicy,
    st.sampled_from([Consumption.UNIFORM, Consumption.UPFRONT]),
    st.one_of(st.sampled_from([0, 1, 5000, 9999, BPS_DENOMINATOR]), st.integers(0, BPS_DENOMINATOR)),
)


@st.composite
def lot_at(draw, slot, t, policy):
    """A lot as it can exist at block time t: started at or before t, maybe expired."""
    amount = draw(amounts)
    start = t - draw(st.one_of(st.integers(0, 100), st.integers(0, min(t, 10**7))))
    span = draw(st.one_of(st.integers(1, 200), st.integers(1, 2 * 10**7)))
    expiry = min(start + span, TIME_LIMIT - 1)
    probe = Lot(slot, amount, 0, start, expiry)
    released_now = amount if is_expired(probe, t) else lot_available(probe, t, policy)
    used = draw(st.one_of(
        st.just(0),
        st.just(released_now),  # everything released so far is used: exhausted lot
        st.just(released_now),
        st.integers(max(0, released_now - 1000), released_now),  # nearly exhausted
        st.integers(0, released_now),
        st.integers(0, amount),  # used ahead of release (an earlier, faster policy)
    ))
    return Lot(slot, amount, used, start, expiry)


@st.composite
def accounts(draw, policy):
    """(t, header, lots): a stored account with consistent lifetime totals."""
    t = draw(times)
    slots = draw(st.one_of(
        st.lists(st.integers(0, LOTS_CAPACITY - 1), max_size=8, unique=True),
        st.lists(st.integers(0, 7), max_size=8, unique=True),
        st.lists(st.integers(0, 3), max_size=3, unique=True),
    ))
    lots = tuple(draw(lot_at(slot, t, policy)) for slot in sorted(slots))
    opened = bool(lots) or draw(st.booleans())
    frozen = opened and draw(st.integers(0, 4)) == 0
    remaining = sum(lot.remaining for lot in lots)
    charged = sum(lot.used for lot in lots) + draw(st.integers(0, 10**20))
    expired = draw(st.one_of(st.integers(0, 10**20), st.integers(TOTAL_LIMIT - 2**90, TOTAL_LIMIT - 1)))
    expired = max(0, min(expired, TOTAL_LIMIT - 1 - charged - remaining))
    header = Header(
        deposited=charged + expired + remaining,
        charged=charged,
        live_mask=sum(1 << lot.slot for lot in lots),
        expired=expired,
        available=draw(st.integers(0, TOTAL_LIMIT - 1)),  # whatever the last update recorded
        status=draw(st.sampled_from(list(Status))) if opened else Status.NONE,
        flags=(FLAG_OPENED if opened else 0) | (FLAG_FROZEN if frozen else 0),
    )
    return t, header, lots


@st.composite
def scenarios(draw):
    """(policy, lowBalance, t, header, lots); lowBalance often right at the LOW boundary."""
    policy = draw(policies)
    t, header, lots = draw(accounts(policy))
    available = account_available(lots, t, policy)
    low = draw(st.one_of(
        st.sampled_from([0, 1, 10**16]),
        st.sampled_from([available, available + 1, max(available - 1, 0)]),
        st.integers(0, TOTAL_LIMIT - 1),
    ))
    return policy, low, t, header, lots


# -- helpers --------------------------------------------------------------------------------

def prepared_state(policy, low, t, header, lots):
    """A state off the head at time t with the policy and the account written in."""
    h = harness()
    state = h.state_at(t)
    state.set_storage(VAULT, SLOT_LOW_BALANCE, low)
    state.set_storage(VAULT, SLOT_CONSUMPTION_MODE, int(policy.mode))
    state.set_storage(VAULT, SLOT_INITIAL_RELEASE_BPS, policy.initial_release_bps)
    base = account_base_slot(OWNER)
    state.set_storage(VAULT, head0_slot(base), pack_head0(header))
    state.set_storage(VAULT, head1_slot(base), pack_head1(header))
    for lot in lots:
        state.set_storage(VAULT, lot_slot(base, lot.slot), pack_lot(lot))
    state.set_balance(VAULT, sum(lot.remaining for lot in lots))
    return h, state


def expected_record(header, lots, t, policy, low):
    return account_available(lots, t, policy), account_status(
        header.opened, header.frozen, lots, t, policy, low
    )


# -- views ----------------------------------------------------------------------------------

@settings(max_examples=40)
@given(scenario=scenarios(), free_probe=st.integers(0, LOTS_CAPACITY - 1))
def test_views_equal_the_python_lot_math(scenario, free_probe):
    policy, low, t, header, lots = scenario
    h, state = prepared_state(policy, low, t, header, lots)

    available = account_available(lots, t, policy) if header.opened else 0
    status = account_status(header.opened, header.frozen, lots, t, policy, low)
    event(f"status {status.name}")
    assert h.view_in(state, "available", OWNER) == available
    assert h.view_in(state, "status", OWNER) == status
    for lot in lots:
        assert h.view_in(state, "lot", OWNER, lot.slot) == (
            lot.amount, lot.used, lot.start, lot.expiry, lot_available(lot, t, policy)
        )
    if not header.live_mask >> free_probe & 1:
        assert h.view_in(state, "lot", OWNER, free_probe) == (0, 0, 0, 0, 0)
    assert h.view_in(state, "liveLots", OWNER) == header.live_slots()
    assert h.view_in(state, "lotCount", OWNER) == len(lots)
    assert h.view_in(state, "totals", OWNER) == (header.deposited, header.charged, header.expired)
    assert h.view_in(state, "recorded", OWNER) == (header.available, header.status)
    assert h.view_in(state, "isFrozen", OWNER) is header.frozen


# -- sweep ----------------------------------------------------------------------------------

@settings(max_examples=40)
@given(scenario=scenarios())
def test_sweep_equals_the_python_sweep(scenario):
    policy, low, t, header, lots = scenario
    h, state = prepared_state(policy, low, t, header, lots)
    treasury_before = state.get_balance(TREASURY)
    out = h.execute(state, calldata("sweepExpired", OWNER), sender=OTHER)
    assert out.success, out.output

    swept = tuple(lot for lot in lots if is_expired(lot, t))
    live = tuple(lot for lot in lots if not is_expired(lot, t))
    swept_wei = sum(lot.remaining for lot in swept)
    assert int.from_bytes(out.output, "big") == swept_wei
    assert state.get_balance(TREASURY) == treasury_before + swept_wei
    assert state.get_balance(VAULT) == sum(lot.remaining for lot in live)

    new_header, new_lots = h.stored(OWNER, state)
    assert new_lots == live
    base = account_base_slot(OWNER)
    assert all(state.get_storage(VAULT, lot_slot(base, lot.slot)) == 0 for lot in swept)
    events = [(e.name, e.args) for e in out.events]
    event(f"swept {len(swept)} of {len(lots)} lots")
    if not swept:  # nothing to do: nothing written, nothing logged
        assert new_header == header and events == []
        return
    available, status = expected_record(header, live, t, policy, low)
    assert new_header == Header(
        deposited=header.deposited, charged=header.charged,
        live_mask=sum(1 << lot.slot for lot in live), expired=header.expired + swept_wei,
        available=available, status=status, flags=header.flags,
    )
    assert new_header.deposited == new_header.charged + new_header.expired + sum(
        lot.remaining for lot in live
    )
    expected_events = [
        ("LotExpired", {"owner": hexaddr(OWNER), "lot": lot.slot, "remainder": lot.remaining})
        for lot in swept
    ]
    if status != header.status:
        expected_events.append(
            ("StatusChanged", {"owner": hexaddr(OWNER), "old": header.status, "new": status})
        )
    assert events == expected_events


# -- deposit --------------------------------------------------------------------------------

@settings(max_examples=40)
@given(
    scenario=scenarios(),
    max_live=st.one_of(st.integers(1, 8), st.integers(1, LOTS_CAPACITY)),
    min_deposit=st.sampled_from([1, 10**3, 10**15]),
    validity=st.one_of(st.integers(1, 10**6), st.integers(1, 2**41)),
    value=st.one_of(
        st.integers(10**15, 10**19), st.integers(10**15, 10**19), st.integers(10**15, 10**19),
        amounts, st.integers(0, 10**3), st.just(AMOUNT_LIMIT),
    ),
)
def test_deposit_equals_the_python_lot_placement(scenario, max_live, min_deposit, validity, value):
    policy, low, t, header, lots = scenario
    h, state = prepared_state(policy, low, t, header, lots)
    state.set_storage(VAULT, SLOT_MAX_LIVE_LOTS, max_live)
    state.set_storage(VAULT, SLOT_MIN_DEPOSIT, min_deposit)
    state.set_storage(VAULT, SLOT_LOT_VALIDITY, validity)
    state.set_balance(OWNER, 2**100)
    vault_before = state.get_balance(VAULT)
    out = h.execute(state, calldata("deposit"), sender=OWNER, value=value)

    free = [i for i in range(max_live) if not header.live_mask >> i & 1]
    event("deposit " + ("ok" if out.success else str(out.reason)))
    if value < min_deposit:
        assert out.reason == "deposit below minDeposit"
    elif value >= AMOUNT_LIMIT:
        assert out.reason == "lot amount must be < 2**88 wei"
    elif t + validity >= TIME_LIMIT:
        assert out.reason == "lot expiry must be < 2**40"
    elif header.deposited + value >= TOTAL_LIMIT:
        assert out.reason == "lifetime deposits must stay < 2**96 wei"
    elif not free:
        assert out.reason == "too many live lots: sweep expired lots first"
    else:
        assert out.success, out.output
        new_lot = Lot(free[0], value, 0, t, t + validity)
        all_lots = tuple(sorted(lots + (new_lot,), key=lambda lot: lot.slot))
        opened_header = Header(**{**header.__dict__, "flags": header.flags | FLAG_OPENED})
        available, status = expected_record(opened_header, all_lots, t, policy, low)
        new_header, new_lots = h.stored(OWNER, state)
        assert new_lots == all_lots
        assert new_header == Header(
            deposited=header.deposited + value, charged=header.charged,
            live_mask=header.live_mask | 1 << free[0], expired=header.expired,
            available=available, status=status, flags=header.flags | FLAG_OPENED,
        )
        assert state.get_balance(VAULT) == vault_before + value
        expected_events = [] if header.opened else [("AccountOpened", {"owner": hexaddr(OWNER)})]
        expected_events.append(("LotDeposited", {
            "owner": hexaddr(OWNER), "lot": free[0], "amount": value, "start": t, "expiry": t + validity,
        }))
        if status != header.status:
            expected_events.append(
                ("StatusChanged", {"owner": hexaddr(OWNER), "old": header.status, "new": status})
            )
        assert [(e.name, e.args) for e in out.events] == expected_events
        return
    assert not out.success
    assert state.get_balance(VAULT) == vault_before
