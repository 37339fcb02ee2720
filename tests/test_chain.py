"""build_chain: new chains, reopened databases, foreign databases, header rules."""
import pytest
from eth.db.atomic import AtomicDB
from eth_utils import ValidationError

from fee_plugin import GenesisMismatchError, build_chain, fee_account, load_genesis
from fee_plugin.chain import genesis_header

from .support.chain import (
    EXAMPLE_GENESIS,
    ETHER,
    GENESIS_TIME,
    USER_KEYS,
    VAULT,
    address,
    calldata,
    make_genesis,
    mine,
    sign,
)

ALICE = USER_KEYS[0]


def test_example_genesis_builds_a_chain_with_the_vault_predeployed():
    genesis = load_genesis(EXAMPLE_GENESIS)
    chain = build_chain(genesis)
    state = chain.get_vm().state
    assert state.get_code(genesis.fee.vault) != b""
    assert chain.get_canonical_head().timestamp == genesis.timestamp


def test_genesis_hash_does_not_depend_on_the_wall_clock():
    genesis = make_genesis()
    assert genesis_header(genesis).hash == genesis_header(genesis).hash
    assert build_chain(genesis).get_canonical_head().hash == genesis_header(genesis).hash


def test_next_header_is_stamped_from_the_parent_not_the_wall_clock():
    chain = build_chain(make_genesis())
    assert chain.header.timestamp == GENESIS_TIME + 1


def test_database_holding_this_genesis_is_reopened_at_its_head():
    genesis = make_genesis()
    db = AtomicDB()
    chain = build_chain(genesis, db)
    mine(chain, [sign(chain, ALICE, VAULT, value=ETHER, data=calldata("deposit"), gas=300_000)], GENESIS_TIME + 5)
    head = chain.get_canonical_head()
    reopened = build_chain(genesis, db)
    assert reopened.get_canonical_head() == head
    assert fee_account(reopened, address(ALICE)) == fee_account(chain, address(ALICE))


def test_database_holding_another_genesis_is_refused():
    db = AtomicDB()
    build_chain(make_genesis(), db)
    with pytest.raises(GenesisMismatchError, match="holds another chain"):
        build_chain(make_genesis(lotValiditySeconds=999), db)


def test_fixed_header_rules_keep_gas_limit_and_base_fee_and_reject_others():
    genesis = make_genesis()
    chain = build_chain(genesis)
    block, _ = mine(chain, [], GENESIS_TIME + 3)
    assert (block.header.gas_limit, block.header.base_fee_per_gas) == (
        genesis.gas_limit,
        genesis.base_fee_per_gas,
    )
    importer = build_chain(genesis)
    bad = block.copy(header=block.header.copy(base_fee_per_gas=genesis.base_fee_per_gas + 1))
    with pytest.raises(ValidationError, match="base.fee"):
        importer.import_block(bad)
    importer.import_block(block)
