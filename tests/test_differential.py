"""Differential: the contract's views and the Python lot math give identical numbers.

Random accounts (lots, used amounts, flags) are written straight into the vault's storage
in a state built off the head, then the views run in that state at random block times.
"""
from eth_abi import decode, encode
from hypothesis import given, settings
from hypothesis import strategies as st

from fee_plugin.artifact import vault_function
from fee_plugin.layout import (
    FLAG_FROZEN,
    FLAG_OPENED,
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
    Consumption,
    ReleasePolicy,
    Status,
    account_available,
    account_status,
    lot_available,
)
from fee_plugin.query import execute_call

from .chain_helpers import VAULT, new_chain

OWNER = b"\x77" * 20
T_BASE = 1_700_000_000

CHAINS = {}


def chain_for(mode: str, bps: int, low: int):
    key = (mode, bps, low)
    if key not in CHAINS:
        CHAINS[key] = new_chain(consumption=mode, initialReleaseBps=bps, lowBalance=str(low))[1]
    return CHAINS[key]


@st.composite
def lots_at(draw, t):
    """Lots as they can exist at block time t: started at or before t, some expired."""
    count = draw(st.integers(0, 8))
    slots = draw(st.lists(st.integers(0, 63), min_size=count, max_size=count, unique=True))
    result = []
    for slot in sorted(slots):
        amount = draw(st.one_of(st.integers(1, 1000), st.integers(10**15, 2**88 - 1)))
        start = t - draw(st.one_of(st.integers(0, 100), st.integers(0, 10**6)))
        expiry = start + draw(st.one_of(st.integers(1, 200), st.integers(1, 2 * 10**6)))
        used = draw(st.integers(0, amount))
        result.append(Lot(slot, amount, used, start, expiry))
    return tuple(result)


@st.composite
def time_and_lots(draw):
    t = T_BASE + draw(st.integers(10**6, 2 * 10**6))
    return t, draw(lots_at(t))


def view(chain, state, function, *args):
    fn = vault_function(function)
    computation = execute_call(chain.get_vm(), state, VAULT, fn.selector + encode(fn.input_types, args))
    assert not computation.is_error, computation.error
    values = decode(fn.output_types, computation.output)
    return values[0] if len(values) == 1 else values


@settings(max_examples=40)
@given(
    t_lots=time_and_lots(),
    mode=st.sampled_from(["uniform", "upfront"]),
    bps=st.sampled_from([0, 1, 2500, 9999, 10000]),
    low=st.sampled_from([0, 10**3, 10**18]),
    frozen=st.booleans(),
    opened=st.booleans(),
)
def test_contract_views_equal_python_lot_math(t_lots, mode, bps, low, frozen, opened):
    t, account_lots = t_lots
    chain = chain_for(mode, bps, low)
    head = chain.get_canonical_head()
    vm = chain.get_vm()
    state = vm.build_state(
        chain.chaindb.db, head.copy(timestamp=t, base_fee_per_gas=0), vm.chain_context, vm.previous_hashes
    )
    opened = opened or bool(account_lots)
    flags = (FLAG_OPENED if opened else 0) | (FLAG_FROZEN if frozen and opened else 0)
    header = Header(live_mask=sum(1 << lot.slot for lot in account_lots), flags=flags)
    base = account_base_slot(OWNER)
    state.set_storage(VAULT, head0_slot(base), pack_head0(header))
    state.set_storage(VAULT, head1_slot(base), pack_head1(header))
    for lot in account_lots:
        state.set_storage(VAULT, lot_slot(base, lot.slot), pack_lot(lot))

    policy = ReleasePolicy(Consumption.UNIFORM if mode == "uniform" else Consumption.UPFRONT, bps)
    expected_available = account_available(account_lots, t, policy) if opened else 0
    expected_status = account_status(opened, header.frozen, account_lots, t, policy, low)
    assert view(chain, state, "available", OWNER) == expected_available
    assert view(chain, state, "status", OWNER) == expected_status
    assert Status(expected_status) in Status
    for lot in account_lots:
        assert view(chain, state, "lot", OWNER, lot.slot) == (
            lot.amount, lot.used, lot.start, lot.expiry, lot_available(lot, t, policy)
        )
    assert view(chain, state, "liveLots", OWNER) == tuple(lot.slot for lot in account_lots)
