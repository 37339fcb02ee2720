"""Random sequences of deposits, grants, transactions and time jumps keep every invariant.

After every block, exactly in wei: per account deposited = charged + expired + remaining;
vault balance = Σ remaining; total ETH changes only by the base fee burned by natively paid
(bootstrap) transactions; a rejected transaction leaves the state root untouched.
"""
from hypothesis import given, settings
from hypothesis import strategies as st

from fee_plugin import FeeValidationError, fee_account
from fee_plugin.vault import FEE_CHARGED_TOPIC

from .support.chain import (
    BASE_FEE,
    COINBASE,
    ETHER,
    GENESIS_TIME,
    OPERATOR_KEY,
    TREASURY,
    USER_KEYS,
    VAULT,
    address,
    calldata,
    new_chain,
    sign,
)

USERS = USER_KEYS[:3]
SINK = b"\x42" * 20
EVERYONE = [address(k) for k in USER_KEYS + (OPERATOR_KEY,)] + [VAULT, TREASURY, COINBASE, SINK]

actions = st.one_of(
    st.tuples(st.just("deposit"), st.integers(0, 2), st.integers(10**15, 3 * ETHER)),
    st.tuples(st.just("grant"), st.integers(0, 2), st.integers(1, 2000)),
    st.tuples(st.just("transfer"), st.integers(0, 2), st.integers(21_000, 200_000)),
    st.tuples(st.just("revert"), st.integers(0, 2), st.integers(30_000, 100_000)),
    st.tuples(st.just("sweep"), st.integers(0, 2), st.just(0)),
    st.tuples(st.just("wait"), st.just(0), st.sampled_from([1, 7, 300, 999, 5000])),
)


def check_invariants(chain, burned_wei, total_before):
    state = chain.get_vm().state
    remaining = 0
    for key in USERS:
        acct = fee_account(chain, address(key))
        assert acct.deposited_wei == acct.charged_wei + acct.expired_wei + acct.remaining_wei
        for lot in acct.lots:
            assert 0 <= lot.used_wei <= lot.amount_wei
            if not lot.expired:
                assert lot.used_wei <= lot.released_wei
        remaining += acct.remaining_wei
    assert state.get_balance(VAULT) == remaining
    assert sum(state.get_balance(a) for a in EVERYONE) == total_before - burned_wei


@settings(max_examples=25)
@given(st.lists(actions, min_size=1, max_size=20), st.sampled_from(["uniform", "upfront"]))
def test_random_sequences_keep_conservation_and_accounting(steps, mode):
    _, chain = new_chain(consumption=mode)
    state = chain.get_vm().state
    total_before = sum(state.get_balance(a) for a in EVERYONE)
    burned = 0
    t = GENESIS_TIME
    # Every user starts with one lot, so most steps exercise lot-paid transactions.
    steps = [("deposit", who, ETHER) for who in range(len(USERS))] + steps
    for kind, who, amount in steps:
        t += 1
        user = USERS[who]
        if kind == "wait":
            t += amount
            continue
        if kind == "deposit":
            tx = sign(chain, user, VAULT, value=amount, data=calldata("deposit"), gas=300_000)
        elif kind == "grant":
            tx = sign(chain, OPERATOR_KEY, VAULT, value=ETHER // 10,
                      data=calldata("grant", address(user), amount), gas=300_000)
        elif kind == "transfer":
            tx = sign(chain, user, SINK, value=1, gas=amount)
        elif kind == "revert":
            tx = sign(chain, user, VAULT, data=b"\xff", gas=amount)
        else:
            tx = sign(chain, OPERATOR_KEY, VAULT, data=calldata("sweepExpired", address(user)), gas=300_000)
        chain.set_header_timestamp(t)
        root = chain.get_vm().state.state_root
        try:
            _, receipt, computation = chain.apply_transaction(tx)
        except FeeValidationError:
            assert chain.get_vm().state.state_root == root  # rejected: nothing changed
            continue
        chain.mine_block()
        # One transaction per block, so the receipt's cumulative gas is this one's.
        paid_natively = not any(
            log.address == VAULT and log.topics[0] == FEE_CHARGED_TOPIC for log in receipt.logs
        )
        if paid_natively:  # bootstrap: Ethereum rules, the base fee is burned
            burned += receipt.gas_used * BASE_FEE
        check_invariants(chain, burned, total_before)
