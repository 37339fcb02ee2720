"""Hostile and bad transactions: each refused with its own reason, and nothing changes.

Two kinds of refusal: the fee rules or Ethereum's rules make a transaction invalid (it is not
included, the state root does not move), or the vault contract reverts a call (the call is
included and pays its fee, but no lot, total or balance of anyone else moves).
"""
import pytest
from eth_abi import decode

from fee_plugin import FeeValidationError, call_latest, fee_account

from .support.chain import (
    ETHER,
    GENESIS_TIME,
    GWEI,
    OPERATOR_KEY,
    USER_KEYS,
    VALIDITY,
    VAULT,
    address,
    calldata,
    mine,
    new_chain,
    sign,
)

ALICE, BOB, MALLORY = USER_KEYS[:3]
T0 = GENESIS_TIME + 10
SINK = b"\x42" * 20


@pytest.fixture
def chain():
    """Alice and Mallory each hold a 1-ether lot (upfront, so everything is spendable)."""
    _, chain = new_chain(consumption="upfront", maxLiveLots=2)
    deposits = [sign(chain, key, VAULT, value=ETHER, data=calldata("deposit"), gas=300_000) for key in (ALICE, MALLORY)]
    mine(chain, deposits, T0)
    return chain


def _freeze_alice(chain):
    mine(chain, [sign(chain, OPERATOR_KEY, VAULT, data=calldata("freeze", address(ALICE)), gas=100_000)], T0 + 1)



def _expire_everything(chain):
    mine(chain, [], T0 + VALIDITY + 1)


# (setup, sender, tx overrides, expected fragment of the refusal)
INVALID = [
    ("fee overflow", None, ALICE, dict(gas=25_000_000, max_fee=2**200, tip=1), "prepaid fee available"),
    ("max fee below base fee", None, ALICE, dict(max_fee=GWEI - 1, tip=0), "< block base fee"),
    ("priority above max fee", None, ALICE, dict(max_fee=2 * GWEI, tip=3 * GWEI), "max priority fee"),
    ("nonce gap", None, ALICE, dict(nonce=7), "nonce 7, expected"),
    ("nonce replay", None, ALICE, dict(nonce=0), "nonce 0, expected 1"),
    ("wrong chain id", None, ALICE, dict(chain_id=1), "chain id 1"),
    ("below intrinsic gas", None, ALICE, dict(gas=20_999), "intrinsic gas"),
    ("frozen sender", _freeze_alice, ALICE, {}, "frozen"),
    ("expired lots only", _expire_everything, ALICE, {}, "prepaid fee available 0 wei"),
    ("no fee account", None, BOB, {}, "no fee account"),
    ("value above ETH balance", None, ALICE, dict(value=10**30), "ETH balance"),
]


@pytest.mark.parametrize("name, setup, key, overrides, reason", INVALID, ids=[row[0] for row in INVALID])
def test_invalid_transaction_is_refused_with_its_reason_and_changes_nothing(chain, name, setup, key, overrides, reason):
    if setup is not None:
        setup(chain)
    chain.set_header_timestamp(chain.get_canonical_head().timestamp + 1)
    kw = {"value": 1, "gas": 21_000, **overrides}
    tx = sign(chain, key, SINK, **kw)
    head, root = chain.header, chain.get_vm().state.state_root
    with pytest.raises(Exception) as err:
        chain.apply_transaction(tx)
    assert reason in str(err.value), str(err.value)
    assert chain.header == head and chain.get_vm().state.state_root == root


def _revert_reason(chain, key, data, value=0):
    computation = call_latest(chain, VAULT, data, sender=address(key), value=value)
    assert computation.is_error
    return decode(["string"], computation.output[4:])[0]


REVERTS = [
    ("dust deposit", MALLORY, calldata("deposit"), 10**15 - 1, "deposit below minDeposit"),
    ("grant by a user", MALLORY, calldata("grant", address(MALLORY), 10), ETHER, "only the operator"),
    ("freeze by a user", MALLORY, calldata("freeze", address(ALICE)), 0, "only the operator"),
    ("unfreeze by a user", MALLORY, calldata("unfreeze", address(MALLORY)), 0, "only the operator"),
    ("validity change by a user", MALLORY, calldata("setLotValidity", 1), 0, "only the operator"),
    ("min deposit change by a user", MALLORY, calldata("setMinDeposit", 1), 0, "only the operator"),
]


@pytest.mark.parametrize("name, key, data, value, reason", REVERTS, ids=[row[0] for row in REVERTS])
def test_vault_reverts_hostile_calls_and_nobody_else_is_touched(chain, name, key, data, value, reason):
    assert _revert_reason(chain, key, data, value) == reason
    alice_before = _book(chain, ALICE)
    tx = sign(chain, key, VAULT, value=value, data=data, gas=200_000)
    _, (receipt,) = mine(chain, [tx], T0 + 5)
    assert receipt.state_root == b""  # included, reverted, fee paid by the caller
    assert _book(chain, ALICE) == alice_before


def _book(chain, key):
    """Everything the vault holds for an account (its lots and totals)."""
    acct = fee_account(chain, address(key))
    return acct.lots, acct.deposited_wei, acct.charged_wei, acct.expired_wei, acct.frozen


def test_deposit_beyond_max_live_lots_reverts(chain):
    mine(chain, [sign(chain, ALICE, VAULT, value=ETHER, data=calldata("deposit"), gas=300_000)], T0 + 2)
    assert _revert_reason(chain, ALICE, calldata("deposit"), ETHER) == "too many live lots (maxLiveLots)"


def test_nobody_can_pay_with_another_users_lots(chain):
    """Sweeping someone else's expired lots sends the remainder to the treasury, never to the
    caller; the ABI has no transfer of credit (tests/test_vault_artifact.py pins it)."""
    mine(chain, [], T0 + VALIDITY + 1)
    mallory_eth = chain.get_vm().state.get_balance(address(MALLORY))
    tx = sign(chain, OPERATOR_KEY, VAULT, data=calldata("sweepExpired", address(ALICE)), gas=200_000)
    mine(chain, [tx], T0 + VALIDITY + 2)
    assert chain.get_vm().state.get_balance(address(MALLORY)) == mallory_eth
    assert fee_account(chain, address(ALICE)).expired_wei == ETHER
    # Mallory's own lots are expired too: her transactions are refused, Alice's credit is gone
    # to the treasury, and nothing lets Mallory reach it.
    chain.set_header_timestamp(T0 + VALIDITY + 3)
    with pytest.raises(FeeValidationError, match="prepaid fee available 0 wei"):
        chain.apply_transaction(sign(chain, MALLORY, SINK, value=1, gas=21_000))
