"""Ethereum's own Cancun BlockchainTests, run through the fee VM.

The fee VM is configured for standard Ethereum header rules and `noAccount: "native"`
(fixture senders have no fee account and the vault is not in their states), so every
fixture that stock py-evm's CancunVM passes must pass unchanged: this is how we know the
executor hook keeps Ethereum's validation, gas purchase, refunds, tips and burn.
Fixtures live in ../shared/fixtures/ethereum-tests (read-only, see its README).
"""
from pathlib import Path

import pytest
import rlp
from eth.chains.base import Chain
from eth.db.atomic import AtomicDB
from eth.tools._utils.normalization import normalize_blockchain_fixtures
from eth.tools.fixtures import (
    apply_fixture_block_to_chain,
    find_fixtures,
    genesis_params_from_fixture,
    load_fixture,
    verify_state,
)
from eth.tools.rlp import assert_imported_block_unchanged
from eth_utils import ValidationError

from fee_plugin import fee_vm_class, load_genesis

from .support.chain import REPO

pytestmark = pytest.mark.slow

FIXTURES = REPO.parent / "shared" / "fixtures" / "ethereum-tests" / "BlockchainTests"
EXPECTED_CASES = 1925  # the README's count: a missing fixture directory must not pass silently
VAULT = "0x00000000000000000000000000000000fee0fee0"

CONFORMANCE_GENESIS = load_genesis({
    "config": {
        "chainId": 1,
        "fork": "cancun",
        "headerRules": "ethereum",
        "feePlugin": {
            "layoutVersion": 3,
            "vault": VAULT,
            "operator": "0x00000000000000000000000000000000fee0fee1",
            "treasury": "0x00000000000000000000000000000000fee0fee2",
            "lotValiditySeconds": 2592000,
            "minDeposit": 1,
            "maxLiveLots": 16,
            "noAccount": "native",
        },
    },
    "timestamp": 0,
    "gasLimit": 30_000_000,
    "baseFeePerGas": 7,
    "alloc": {},
})
# Both hook designs: here every sender pays natively, so the write-back design's cache
# never holds a charge, but its flush-and-lock before every such transaction runs, and
# Ethereum's own tests prove it changes nothing.
CHAINS = {
    design: Chain.configure(
        __name__=f"FeeConformanceChain{design}",
        vm_configuration=((0, fee_vm_class(CONFORMANCE_GENESIS, "cancun", write_back=wb)),),
        chain_id=1,
    )
    for design, wb in (("PerTx", False), ("WriteBack", True))
}


def _cases():
    if not FIXTURES.is_dir():
        return []
    return sorted(find_fixtures(str(FIXTURES)))


CASES = _cases()


def test_all_fixture_cases_are_collected():
    assert len(CASES) == EXPECTED_CASES, f"found {len(CASES)} cases under {FIXTURES}"


def _case_id(case):
    path, key = case
    return f"{Path(path).relative_to(FIXTURES)}:{key}"


@pytest.mark.parametrize("design", sorted(CHAINS))
@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_fee_vm_passes_ethereum_blockchain_test(case, design):
    fixture = load_fixture(case[0], case[1], normalize_blockchain_fixtures)
    assert fixture["network"] == "Cancun"
    assert bytes.fromhex(VAULT[2:]) not in fixture["pre"], "vault collides with the fixture"
    chain = CHAINS[design].from_genesis(
        AtomicDB(),  # a fresh in-memory database per case
        genesis_params_from_fixture(fixture),
        fixture["pre"],
    )
    genesis = chain.get_canonical_block_by_number(0).header
    assert genesis.hash == fixture["genesisBlockHeader"]["hash"]
    for block_fixture in fixture["blocks"]:
        if "blockHeader" in block_fixture:
            provided, executed, _ = apply_fixture_block_to_chain(
                block_fixture, chain, perform_validation=False
            )
            assert_imported_block_unchanged(provided, executed)
            chain.validate_block(provided)
        else:
            with pytest.raises((TypeError, rlp.DecodingError, rlp.DeserializationError, ValidationError)):
                apply_fixture_block_to_chain(block_fixture, chain)
    assert chain.get_canonical_head().hash == fixture["lastblockhash"]
    verify_state(fixture["postState"], chain.get_vm().state)
