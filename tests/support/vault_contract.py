"""Names shared by the vault contract tests (test_vault_contract*.py)."""
from .vault_harness import GENESIS_TIME, OPERATOR_KEY, USER_KEYS, VAULT, address

ALICE_KEY, BOB_KEY, CAROL_KEY = USER_KEYS[:3]
ALICE, BOB, CAROL = (address(k) for k in (ALICE_KEY, BOB_KEY, CAROL_KEY))
OPERATOR = address(OPERATOR_KEY)
T0 = GENESIS_TIME + 100
VALIDITY = 1000
MIN_DEPOSIT = 10**15


def hexaddr(addr: bytes) -> str:
    return "0x" + addr.hex()


def assert_identity(h, owners):
    """deposited = charged + expired + Σ(A−u) per account (charged derived, so also
    compare the contract's totals); vault balance = ΣΣ(A−u)."""
    held = 0
    for owner in owners:
        stored = h.stored(owner)
        remaining = sum(lot.remaining for lot in stored.lots)
        assert h.view("totals", owner) == (stored.totals.deposited, stored.charged_wei, stored.totals.expired)
        assert stored.totals.deposited == stored.charged_wei + stored.totals.expired + remaining
        held += remaining
    assert h.balance(VAULT) == held
