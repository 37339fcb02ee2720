"""Genesis loading: the example loads, and every malformed field is named in the error."""
import copy
import dataclasses
import json

import pytest

from fee_plugin import GenesisError, load_genesis
from fee_plugin.genesis import vault_storage
from fee_plugin.layout import SLOT_LOT_VALIDITY, SLOT_MAX_LIVE_LOTS, SLOT_OPERATOR

from .chain_helpers import EXAMPLE_GENESIS

FEE = "config.feePlugin"
ALICE = "0x1a642f0E3c3aF545E7AcBD38b07251B3990914F1"


def example():
    return json.loads(EXAMPLE_GENESIS.read_text())


def mutate(path, value):
    """The example with one field set (value=...) or deleted (value=DELETE)."""
    raw = example()
    *parents, last = path.split(".")
    node = raw
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return raw


DELETE = object()

# (field path, value to put there, expected error path, fragment of the reason)
CATALOGUE = [
    ("config", DELETE, "config", "missing"),
    ("config.chainId", DELETE, "config.chainId", "missing"),
    ("config.chainId", 0, "config.chainId", ">= 1"),
    ("config.chainId", "0xzz", "config.chainId", "not a decimal or 0x-hex"),
    ("config.chainId", 1.5, "config.chainId", "expected an integer"),
    ("config.chainId", True, "config.chainId", "expected an integer"),
    ("config.fork", "osaka", "config.fork", "one of cancun, prague"),
    ("config.fork", DELETE, "config.fork", "missing"),
    ("config.headerRules", "elastic", "config.headerRules", "one of fixed, ethereum"),
    ("config.chainID", 5, "config.chainID", "unknown field"),
    (f"{FEE}", DELETE, FEE, "missing"),
    (f"{FEE}.vault", "0x1234", f"{FEE}.vault", "20-byte hex address"),
    (f"{FEE}.vault", "0x0000000000000000000000000000000000000001", f"{FEE}.vault", "precompile"),
    (f"{FEE}.vault", "0x0000F90827F1C53a10cb7A02335B175320002935", f"{FEE}.vault", "system contract"),
    (f"{FEE}.vault", ALICE, f"alloc.{ALICE}", "collides"),
    (f"{FEE}.operator", "0x5050a4f4b3f9338c3472dcc01a87c76a144b3c9C", f"{FEE}.operator", "checksum"),
    (f"{FEE}.operator", DELETE, f"{FEE}.operator", "missing"),
    (f"{FEE}.treasury", "0x000000000000000000000000000000000000fee0", f"{FEE}.treasury", "must differ from vault"),
    (f"{FEE}.lotValiditySeconds", 0, f"{FEE}.lotValiditySeconds", ">= 1"),
    (f"{FEE}.lotValiditySeconds", -5, f"{FEE}.lotValiditySeconds", ">= 1"),
    (f"{FEE}.lotValiditySeconds", "-5", f"{FEE}.lotValiditySeconds", "not a decimal"),
    (f"{FEE}.lotValiditySeconds", str(2**40), f"{FEE}.lotValiditySeconds", "< 1099511627776"),
    (f"{FEE}.lotValiditySeconds", str(2**40 - 100), f"{FEE}.lotValiditySeconds", "timestamp + validity"),
    (f"{FEE}.consumption", "linear", f"{FEE}.consumption", "one of uniform, upfront"),
    (f"{FEE}.initialReleaseBps", 10_001, f"{FEE}.initialReleaseBps", "< 10001"),
    (f"{FEE}.minDeposit", "0", f"{FEE}.minDeposit", ">= 1"),
    (f"{FEE}.minDeposit", str(2**88), f"{FEE}.minDeposit", "< 309485009821345068724781056"),
    (f"{FEE}.maxLiveLots", 0, f"{FEE}.maxLiveLots", ">= 1"),
    (f"{FEE}.maxLiveLots", 65, f"{FEE}.maxLiveLots", "< 65"),
    (f"{FEE}.lowBalance", str(2**96), f"{FEE}.lowBalance", "< 79228162514264337593543950336"),
    (f"{FEE}.noAccount", "allow", f"{FEE}.noAccount", "one of reject, native"),
    (f"{FEE}.minDepositWei", "1", f"{FEE}.minDepositWei", "unknown field"),
    ("timestamp", DELETE, "timestamp", "missing"),
    ("timestamp", "12abc", "timestamp", "not a decimal"),
    ("timestamp", "+12", "timestamp", "not a decimal"),
    ("timestamp", "", "timestamp", "not a decimal"),
    ("gasLimit", "20999", "gasLimit", ">= 21000"),
    ("baseFeePerGas", "0", "baseFeePerGas", ">= 1"),
    ("baseFeePerGas", DELETE, "baseFeePerGas", "missing"),
    ("coinbase", "0xnothex", "coinbase", "20-byte hex address"),
    ("extraData", "0x" + "00" * 33, "extraData", "at most 32 bytes"),
    ("extraData", "0x0", "extraData", "hex bytes"),
    (f"alloc.{ALICE}.balance", str(2**256), f"alloc.{ALICE}.balance", "must be >= 0"),
    (f"alloc.{ALICE}.balance", DELETE, f"alloc.{ALICE}.balance", "missing"),
    (f"alloc.{ALICE}.nonce", str(2**64), f"alloc.{ALICE}.nonce", "must be >= 0"),
    (f"alloc.{ALICE}.code", "0xabc", f"alloc.{ALICE}.code", "hex bytes"),
    (f"alloc.{ALICE}.storage", [], f"alloc.{ALICE}.storage", "JSON object"),
    (f"alloc.{ALICE}.weight", 1, f"alloc.{ALICE}.weight", "unknown field"),
    ("alloc.0xNOTANADDRESS", {"balance": "1"}, "alloc.0xNOTANADDRESS", "20-byte hex address"),
    ("alloc.0x1A642F0E3C3AF545E7ACBD38B07251B3990914F1", {"balance": "1"}, "alloc.", "duplicate address"),
]


@pytest.mark.parametrize("field, value, error_path, reason", CATALOGUE, ids=[f"{r[0]}={r[1]!r:.20}" for r in CATALOGUE])
def test_malformed_field_is_named(field, value, error_path, reason):
    with pytest.raises(GenesisError) as err:
        load_genesis(mutate(field, value))
    assert err.value.path.startswith(error_path), str(err.value)
    assert reason in err.value.why, str(err.value)


def test_example_genesis_loads_with_documented_defaults():
    genesis = load_genesis(EXAMPLE_GENESIS)
    assert (genesis.chain_id, genesis.fork, genesis.header_rules) == (1337, "prague", "fixed")
    assert genesis.fee.lot_validity_seconds == 30 * 24 * 3600
    assert genesis.fee.max_live_lots == 16 and genesis.fee.no_account == "reject"


def test_hex_and_decimal_quantities_are_equal():
    as_hex = example()
    as_hex["gasLimit"] = hex(30_000_000)
    as_hex["config"]["feePlugin"]["lotValiditySeconds"] = 2592000
    assert load_genesis(as_hex) == load_genesis(example())


def test_optional_fields_take_defaults():
    raw = example()
    for key in ("consumption", "initialReleaseBps", "lowBalance", "noAccount"):
        del raw["config"]["feePlugin"][key]
    del raw["config"]["headerRules"]
    genesis = load_genesis(raw)
    assert (genesis.fee.consumption.name, genesis.fee.initial_release_bps, genesis.fee.low_balance_wei) == ("UNIFORM", 0, 0)
    assert genesis.header_rules == "fixed" and genesis.fee.no_account == "reject"


def test_vault_is_predeployed_with_its_config_in_storage():
    genesis = load_genesis(EXAMPLE_GENESIS)
    state = genesis.genesis_state()
    vault = state[genesis.fee.vault]
    assert vault["code"] and vault["balance"] == 0
    assert vault["storage"] == vault_storage(genesis.fee)
    assert vault["storage"][SLOT_OPERATOR] == int.from_bytes(genesis.fee.operator, "big")
    assert vault["storage"][SLOT_LOT_VALIDITY] == 2592000 and vault["storage"][SLOT_MAX_LIVE_LOTS] == 16
    assert all(set(entry) == {"balance", "nonce", "code", "storage"} for entry in state.values())


def test_source_hash_is_stable_and_changes_with_any_field():
    base = load_genesis(example())
    assert base.source_hash == load_genesis(example()).source_hash
    other = copy.deepcopy(example())
    other["config"]["feePlugin"]["maxLiveLots"] = 15
    assert load_genesis(other).source_hash != base.source_hash


def test_genesis_is_frozen():
    genesis = load_genesis(EXAMPLE_GENESIS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        genesis.chain_id = 1


def test_file_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(GenesisError, match="cannot read"):
        load_genesis(missing)
    broken = tmp_path / "broken.json"
    broken.write_text('{"config": {,}}')
    with pytest.raises(GenesisError, match="invalid JSON at line 1 column 13"):
        load_genesis(broken)
    duplicated = tmp_path / "dup.json"
    duplicated.write_text('{"timestamp": "1", "timestamp": "2"}')
    with pytest.raises(GenesisError, match="duplicate key"):
        load_genesis(duplicated)
