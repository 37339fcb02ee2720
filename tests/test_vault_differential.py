"""Differential: the vault contract, fee_plugin (views and the hook's charge) and a plain
list reference (tests/support/vault_reference.py) agree exactly on layout v3.

Random accounts as the vault could hold them after an update at some anchor time (two lot
chains, the release line, totals) and random policies are written straight into the vault's
storage in a throw-away state off the head of a stock-py-evm chain (tests/support/vault_harness.py);
the contract then runs in that very state at a later block time.
"""
import copy
import os

from hypothesis import event, given, settings
from hypothesis import strategies as st

from fee_plugin.layout import (
    SLOT_CONSUMPTION_MODE,
    SLOT_INITIAL_RELEASE_BPS,
    SLOT_LOT_VALIDITY,
    SLOT_LOW_BALANCE,
    SLOT_MAX_LIVE_LOTS,
    SLOT_MIN_DEPOSIT,
    TOTAL_LIMIT,
    account_base_slot,
    lot_slot,
)
from fee_plugin.lots import AMOUNT_LIMIT, LOTS_CAPACITY, TIME_LIMIT, lot_available
from fee_plugin.vault import load_account, plan_charge, reader, write_account

from .support.vault_reference import amounts, stored_accounts
from .support.vault_harness import GENESIS_TIME, TREASURY, VAULT, VaultHarness, calldata

EXAMPLES = int(os.environ.get("DIFF_EXAMPLES", 60))  # by hand: DIFF_EXAMPLES=2000
OWNER = b"\x77" * 20
OTHER = b"\x66" * 20
HEX_OWNER = "0x" + OWNER.hex()
_HARNESS = []


def harness() -> VaultHarness:
    if not _HARNESS:
        _HARNESS.append(VaultHarness())
    return _HARNESS[0]


@st.composite
def scenarios(draw):
    """(policy, low, anchor, t, account); lowBalance often right at the LOW boundary."""
    policy, anchor, t, account = draw(stored_accounts(GENESIS_TIME + 1, min(GENESIS_TIME + 10**7, TIME_LIMIT - 10**4)))
    available = account.available(t, policy)
    low = draw(st.one_of(st.sampled_from([0, 1, 10**16]),
                         st.sampled_from([available, available + 1, max(available - 1, 0)]),
                         st.integers(0, TOTAL_LIMIT - 1)))
    return policy, low, anchor, t, account


def prepared_state(policy, low, anchor, t, account):
    """A state off the head at time t with the policy and the account written in."""
    h = harness()
    state = h.state_at(t)
    state.set_storage(VAULT, SLOT_LOW_BALANCE, low)
    state.set_storage(VAULT, SLOT_CONSUMPTION_MODE, int(policy.mode))
    state.set_storage(VAULT, SLOT_INITIAL_RELEASE_BPS, policy.initial_release_bps)
    head, totals = account.words(anchor, policy)
    h.write_account(state, OWNER, head, totals, account.charge, account.spent)
    state.set_balance(VAULT, sum(lot.amount - lot.used for lot in account.stored))
    return h, state


def assert_views(h, state, account, policy, low, t):
    """The contract's views, fee_plugin's reading of the same words, and the reference."""
    available, status = account.available(t, policy), account.status_at(t, policy, low)
    assert h.view_in(state, "available", OWNER) == available
    assert h.view_in(state, "status", OWNER) == status
    slots = tuple(lot.slot for lot in account.stored)
    assert h.view_in(state, "liveLots", OWNER) == slots and h.view_in(state, "lotCount", OWNER) == len(slots)
    for lot in account.stored:
        assert h.view_in(state, "lot", OWNER, lot.slot) == (
            lot.amount, lot.used, lot.start, lot.expiry, lot_available(lot, t, policy))
    assert h.view_in(state, "totals", OWNER) == (account.deposited, account.charged, account.expired)
    assert h.view_in(state, "isFrozen", OWNER) is account.frozen
    stored = h.stored(OWNER, state)
    assert (stored.charge_lots, stored.spent_lots) == (tuple(account.charge), tuple(account.spent))
    assert stored.available(t, policy) == available and stored.status(t, policy, low) == status
    assert stored.charged_wei == account.charged
    return stored


@settings(max_examples=EXAMPLES)
@given(scenario=scenarios(), free_probe=st.integers(0, LOTS_CAPACITY - 1))
def test_views_agree(scenario, free_probe):
    policy, low, anchor, t, account = scenario
    h, state = prepared_state(policy, low, anchor, t, account)
    event(f"status {account.status_at(t, policy, low)}, {len(account.charge)}+{len(account.spent)} lots")
    stored = assert_views(h, state, account, policy, low, t)
    if free_probe not in {lot.slot for lot in account.stored}:
        assert h.view_in(state, "lot", OWNER, free_probe) == (0, 0, 0, 0, 0)
    line = stored.head.line
    assert h.view_in(state, "recorded", OWNER) == (line.available, account.status, line.anchor)


@settings(max_examples=EXAMPLES)
@given(scenario=scenarios())
def test_sweep_agrees(scenario):
    policy, low, anchor, t, account = scenario
    h, state = prepared_state(policy, low, anchor, t, account)
    treasury_before = state.get_balance(TREASURY)
    out = h.execute(state, calldata("sweepExpired", OWNER), sender=OTHER)
    assert out.success, out.output
    events, swept, moved = account.settle(HEX_OWNER, t) if account.opened else ([], 0, False)
    if moved:
        events += account.record(HEX_OWNER, t, policy, low)
    event(f"moved {moved}, swept {bool(swept)}")
    assert [(e.name, e.args) for e in out.events] == events
    assert int.from_bytes(out.output, "big") == swept
    assert state.get_balance(TREASURY) == treasury_before + swept
    assert state.get_balance(VAULT) == sum(lot.amount - lot.used for lot in account.stored)
    base = account_base_slot(OWNER)
    freed = set(range(LOTS_CAPACITY)) - {lot.slot for lot in account.stored}
    assert all(state.get_storage(VAULT, lot_slot(base, slot)) == 0 for slot in freed)
    stored = assert_views(h, state, account, policy, low, t)
    if moved:
        assert stored.head.line.anchor == t and stored.head.status == account.status


@settings(max_examples=EXAMPLES)
@given(
    scenario=scenarios(),
    max_live=st.one_of(st.integers(1, 8), st.integers(1, LOTS_CAPACITY)),
    min_deposit=st.sampled_from([1, 10**3, 10**15]),
    validity=st.one_of(st.integers(1, 10**6), st.integers(1, 2**41)),
    value=st.one_of(st.integers(10**15, 10**19), st.integers(10**15, 10**19), amounts,
                    st.integers(0, 10**3), st.just(AMOUNT_LIMIT)),
)
def test_deposit_agrees(scenario, max_live, min_deposit, validity, value):
    policy, low, anchor, t, account = scenario
    h, state = prepared_state(policy, low, anchor, t, account)
    state.set_storage(VAULT, SLOT_MAX_LIVE_LOTS, max_live)
    state.set_storage(VAULT, SLOT_MIN_DEPOSIT, min_deposit)
    state.set_storage(VAULT, SLOT_LOT_VALIDITY, validity)
    state.set_balance(OWNER, 2**100)
    vault_before, treasury_before = state.get_balance(VAULT), state.get_balance(TREASURY)
    out = h.execute(state, calldata("deposit"), sender=OWNER, value=value)

    before = copy.deepcopy(account)
    events, swept, _ = account.settle(HEX_OWNER, t)
    free = [i for i in range(max_live) if i not in {lot.slot for lot in account.stored}]
    event("deposit " + ("ok" if out.success else str(out.reason)))
    if value < min_deposit:
        assert out.reason == "deposit below minDeposit"
    elif value >= AMOUNT_LIMIT:
        assert out.reason == "lot amount must be < 2**84 wei"
    elif t + validity >= TIME_LIMIT:
        assert out.reason == "lot expiry must be < 2**40"
    elif account.deposited + value >= TOTAL_LIMIT:
        assert out.reason == "lifetime deposits must stay < 2**96 wei"
    elif len(account.stored) >= max_live or not free:
        assert out.reason == "too many live lots (maxLiveLots)"
    else:
        assert out.success, out.output
        slot, added = account.add(HEX_OWNER, value, t, validity, max_live)
        events += added + account.record(HEX_OWNER, t, policy, low)
        assert [(e.name, e.args) for e in out.events] == events
        assert state.get_balance(VAULT) == vault_before + value - swept
        assert state.get_balance(TREASURY) == treasury_before + swept
        stored = assert_views(h, state, account, policy, low, t)
        assert stored.head.line.anchor == t and stored.head.status == account.status
        return
    assert not out.success  # the whole call reverted, the settlement too
    assert state.get_balance(VAULT) == vault_before
    assert_views(h, state, before, policy, low, t)


@settings(max_examples=EXAMPLES)
@given(scenario=scenarios(), data=st.data())
def test_the_hooks_charge_is_read_back_by_the_contract(scenario, data):
    """fee_plugin's charge (what the executor stores) leaves words the contract's views
    read exactly as the reference expects."""
    policy, low, anchor, t, account = scenario
    account.frozen = False  # a frozen account is never charged
    available = account.available(t, policy)
    if not account.opened or available == 0:
        return
    h, state = prepared_state(policy, low, anchor, t, account)
    fee = data.draw(st.one_of(st.just(available), st.integers(1, available)))
    record = load_account(state, VAULT, OWNER, t)
    assert record.available_at(t, policy) == available
    charge, after = plan_charge(record, fee, t, policy, low, reader(state, VAULT, OWNER))
    write_account(state, VAULT, after)

    # The reference: sweep the expired front, draw in charge order, move used-up front lots.
    swept = [lot for lot in account.charge if t >= lot.expiry]
    account.charge = account.charge[len(swept):]
    account.expired += sum(lot.amount - lot.used for lot in swept)
    left, drawn = fee, []
    for i, lot in enumerate(account.charge):
        take = min(lot_available(lot, t, policy), left)
        if take:
            account.charge[i] = type(lot)(lot.slot, lot.amount, lot.used + take, lot.start, lot.expiry)
            drawn.append((lot.slot, take))
            left -= take
    assert left == 0
    while account.charge and account.charge[0].used == account.charge[0].amount:
        account.spent.insert(0, account.charge.pop(0))
    assert charge.allocation == tuple(drawn)
    assert charge.swept == tuple((lot.slot, lot.amount - lot.used) for lot in swept)
    assert charge.available_after_wei == available - fee == account.available(t, policy)
    event(f"drew {len(drawn)} lots, swept {len(swept)}")
    state.set_balance(VAULT, sum(lot.amount - lot.used for lot in account.stored))
    stored = assert_views(h, state, account, policy, low, t)
    assert stored.head.line.anchor == t and stored.head.status == charge.status_after
