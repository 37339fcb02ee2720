"""What a valid genesis gives: the example's values, documented defaults, the storage layout
version, the vault predeploy carrying the config, and a source_hash that identifies a genesis
whatever its spelling. Malformed input is refused in test_genesis_fields.py."""
import copy
import dataclasses
import json

import pytest
from eth_utils import keccak

from fee_plugin.genesis import (
    LAYOUT_VERSION,
    AllocAccount,
    FeeConfig,
    Genesis,
    GenesisError,
    canonical_encoding,
    load_genesis,
    vault_storage,
)
from fee_plugin.layout import (
    SLOT_CONSUMPTION_MODE,
    SLOT_INITIAL_RELEASE_BPS,
    SLOT_LOT_VALIDITY,
    SLOT_LOW_BALANCE,
    SLOT_MAX_LIVE_LOTS,
    SLOT_MIN_DEPOSIT,
    SLOT_OPERATOR,
    SLOT_TREASURY,
)
from fee_plugin.lots import Consumption, ReleasePolicy

from .support.genesis_example import (
    ALICE, A, DELETE, EXAMPLE, FEE, OPERATOR, REPO, TREASURY, VAULT, example, mutate,
)

ARTIFACT = REPO / "fee_plugin" / "artifacts" / "FeeVault.json"


# -- what a valid genesis gives ---------------------------------------------------------


def test_example_file_loads_with_its_values():
    genesis = load_genesis(EXAMPLE)
    assert (genesis.chain_id, genesis.fork, genesis.header_rules) == (1337, "prague", "fixed")
    assert (genesis.timestamp, genesis.gas_limit, genesis.base_fee_per_gas) == (1735689600, 30_000_000, 10**9)
    assert genesis.extra_data == b"" and genesis.coinbase == bytes.fromhex("00" * 17 + "0c01b5")
    fee = genesis.fee
    assert fee.layout_version == 3
    assert fee.vault == bytes.fromhex(VAULT[2:]) and fee.operator == bytes.fromhex(OPERATOR[2:])
    assert len({fee.vault, fee.operator, fee.treasury}) == 3
    assert fee.lot_validity_seconds == 30 * 24 * 3600 and fee.consumption is Consumption.UNIFORM
    assert (fee.initial_release_bps, fee.min_deposit_wei, fee.max_live_lots) == (1000, 10**15, 16)
    assert (fee.low_balance_wei, fee.no_account) == (10**16, "reject")
    assert fee.release_policy == ReleasePolicy(Consumption.UNIFORM, 1000)
    addresses = [address for address, _ in genesis.alloc]
    assert addresses == sorted(addresses) and len(addresses) == 3
    assert all(account == AllocAccount(10**21, 0, b"", ()) for _, account in genesis.alloc)


def test_example_dev_accounts_are_the_documented_throwaway_keys():
    eth_keys = pytest.importorskip("eth_keys")
    derived = {eth_keys.keys.PrivateKey(bytes([b]) * 32).public_key.to_canonical_address() for b in (1, 2, 3)}
    assert {address for address, _ in load_genesis(EXAMPLE).alloc} == derived


def _as_hex(raw):
    """Every quantity of the example rewritten: strings to 0x-hex, JSON ints to hex strings."""
    raw = copy.deepcopy(raw)
    fee = raw["config"]["feePlugin"]
    for key in ("layoutVersion", "lotValiditySeconds", "initialReleaseBps", "minDeposit", "maxLiveLots",
                "lowBalance"):
        fee[key] = hex(int(fee[key]))
    raw["config"]["chainId"] = hex(raw["config"]["chainId"])
    for key in ("timestamp", "gasLimit", "baseFeePerGas"):
        raw[key] = hex(int(raw[key])).upper().replace("0X", "0x")
    for key, account in raw["alloc"].items():
        if not key.startswith("_"):
            account["balance"] = hex(int(account["balance"]))
    return raw


def _as_ints(raw):
    raw = copy.deepcopy(raw)
    fee = raw["config"]["feePlugin"]
    for key in ("lotValiditySeconds", "minDeposit", "lowBalance"):
        fee[key] = int(fee[key])
    for key in ("timestamp", "gasLimit", "baseFeePerGas"):
        raw[key] = int(raw[key])
    return raw


def test_hex_decimal_and_integer_quantities_are_equal():
    base = load_genesis(example())
    for variant in (_as_hex(example()), _as_ints(example())):
        genesis = load_genesis(variant)
        assert genesis == base and genesis.source_hash == base.source_hash


def test_spelling_does_not_matter_but_content_does():
    """Key order, comments, address case, 0x-less alloc keys and word case give the same genesis."""
    raw = example()
    respelled = {"alloc": {}, "_note": {"anything": [1, 2.5, None]}}
    for key, account in sorted(raw["alloc"].items(), reverse=True):
        if not key.startswith("_"):
            respelled["alloc"][key[2:].lower()] = dict(account, _why="dev")
    for key in reversed(list(raw)):
        if key not in ("alloc", "_comment"):
            respelled[key] = raw[key]
    respelled["config"]["fork"] = "Prague"
    respelled["config"]["feePlugin"]["consumption"] = "UNIFORM"
    respelled["config"]["feePlugin"]["operator"] = OPERATOR.lower()
    assert load_genesis(respelled) == load_genesis(raw)
    assert load_genesis(respelled).source_hash == load_genesis(raw).source_hash


def test_optional_fields_take_documented_defaults():
    raw = example()
    for key in ("consumption", "initialReleaseBps", "lowBalance", "noAccount"):
        del raw["config"]["feePlugin"][key]
    for key in ("headerRules",):
        del raw["config"][key]
    for key in ("coinbase", "extraData"):
        del raw[key]
    raw["alloc"][ALICE] = {"balance": 5}
    genesis = load_genesis(raw)
    assert genesis.header_rules == "fixed" and genesis.coinbase == b"\x00" * 20 and genesis.extra_data == b""
    fee = genesis.fee
    assert (fee.consumption, fee.initial_release_bps, fee.low_balance_wei, fee.no_account) == (
        Consumption.UNIFORM, 0, 0, "reject")
    assert dict(genesis.alloc)[bytes.fromhex(ALICE[2:])] == AllocAccount(5, 0, b"", ())


def test_boundary_values_are_accepted():
    raw = example()
    fee = raw["config"]["feePlugin"]
    fee.update(lotValiditySeconds=2**40 - 1, minDeposit=2**84 - 1, maxLiveLots=64, lowBalance=2**96 - 1,
               initialReleaseBps=10_000, consumption="upfront", noAccount="native",
               vault="0x" + "00" * 19 + "12")  # the first address after the precompiles
    raw.update(timestamp=0, gasLimit=21_000, baseFeePerGas=2**256 - 1, extraData="0x" + "ab" * 32)
    raw["config"].update(chainId=2**64 - 1, fork="cancun", headerRules="ethereum")
    raw["alloc"][ALICE] = {"balance": 2**256 - 1, "nonce": 2**64 - 1, "code": "0x6000", "storage": {}}
    genesis = load_genesis(raw)
    assert (genesis.fee.max_live_lots, genesis.fee.consumption, genesis.fork) == (64, Consumption.UPFRONT, "cancun")
    raw["timestamp"] = 1
    with pytest.raises(GenesisError, match="timestamp \\+ lotValiditySeconds"):
        load_genesis(raw)


def test_treasury_may_be_funded_in_alloc():
    raw = mutate(f"{FEE}.treasury", ALICE)
    assert load_genesis(raw).fee.treasury == bytes.fromhex(ALICE[2:])


def test_alloc_storage_is_sorted_and_drops_zero_words():
    raw = example()
    raw["alloc"][ALICE].update(nonce="0x2", code="0x60006000", storage={
        "0x10": "0x1", "2": "0", "0x0000000000000000000000000000000000000000000000000000000000000001": 7,
        "_comment": "comments are allowed here too"})
    account = dict(load_genesis(raw).alloc)[bytes.fromhex(ALICE[2:])]
    assert account == AllocAccount(10**21, 2, bytes.fromhex("60006000"), ((1, 7), (16, 1)))


# -- the vault storage layout version -----------------------------------------------------

LAYOUT = f"{FEE}.layoutVersion"
SUPPORTED = "this release supports only layout 3 (contracts/LAYOUT.md)"
RECREATE = "a chain created with another layout must be re-created from a genesis with layoutVersion 3"
REFUSED_LAYOUTS = [
    (DELETE, "required field is missing (the vault storage layout version); "),
    (2, "layout 2 is no longer supported: "),
    ("2", "layout 2 is no longer supported: "),
    (1, "layout 1 is no longer supported: "),
    (4, "layout 4 is unknown to this release: "),
    (0, "layout 0 is unknown to this release: "),
    ("x", "not a decimal or 0x-hex quantity: 'x'; "),
    (3.0, "expected an integer or a decimal/0x-hex string, got number 3.0 (not an integer); "),
    (True, "expected an integer or a decimal/0x-hex string, got boolean true; "),
    (None, "expected an integer or a decimal/0x-hex string, got null; "),
]


@pytest.mark.parametrize("value, reason", REFUSED_LAYOUTS,
                         ids=["missing" if v is DELETE else repr(v) for v, _ in REFUSED_LAYOUTS])
def test_layout_version_other_than_3_is_refused_with_what_to_do(value, reason):
    """A genesis of an older layout must not start a node that would misread its vault."""
    with pytest.raises(GenesisError) as err:
        load_genesis(mutate(LAYOUT, value))
    assert err.value.path == LAYOUT, str(err.value)
    assert err.value.why == f"{reason}{SUPPORTED}; {RECREATE}"


@pytest.mark.parametrize("value", [3, "3", "0x3"], ids=repr)
def test_layout_version_3_loads_into_fee_config_and_the_source_hash(value):
    genesis = load_genesis(mutate(LAYOUT, value))
    assert genesis.fee.layout_version == LAYOUT_VERSION == 3
    assert genesis == load_genesis(EXAMPLE) and genesis.source_hash == load_genesis(EXAMPLE).source_hash
    assert b'"layoutVersion":3' in canonical_encoding(genesis)
    other = dataclasses.replace(genesis, fee=dataclasses.replace(genesis.fee, layout_version=2))
    assert other.source_hash != genesis.source_hash


# -- genesis_state / genesis_params ------------------------------------------------------


@pytest.fixture
def vault_code(monkeypatch):
    """The committed runtime code; a stand-in only while the artifact does not exist yet."""
    if ARTIFACT.exists():
        return bytes.fromhex(json.loads(ARTIFACT.read_text())["runtimeBytecode"][2:])
    stand_in = b"\x5f\x5f\xfd"  # PUSH0 PUSH0 REVERT
    monkeypatch.setattr("fee_plugin.genesis.vault_runtime_code", lambda: stand_in)
    return stand_in


def test_genesis_state_has_alloc_and_the_vault_predeploy(vault_code):
    genesis = load_genesis(EXAMPLE)
    state = genesis.genesis_state()
    assert all(set(entry) == {"balance", "nonce", "code", "storage"} for entry in state.values())
    assert set(state) == {address for address, _ in genesis.alloc} | {genesis.fee.vault}
    vault = state[genesis.fee.vault]
    assert (vault["balance"], vault["nonce"], vault["code"]) == (0, 1, vault_code)
    assert vault["storage"] == {
        SLOT_OPERATOR: int(OPERATOR, 16),
        SLOT_TREASURY: int(TREASURY, 16),
        SLOT_LOT_VALIDITY: 2_592_000,
        SLOT_MIN_DEPOSIT: 10**15,
        SLOT_MAX_LIVE_LOTS: 16,
        SLOT_LOW_BALANCE: 10**16,
        SLOT_INITIAL_RELEASE_BPS: 1000,
    }  # consumption 0 (uniform) is a zero word: absent
    assert state[bytes.fromhex(ALICE[2:])] == {"balance": 10**21, "nonce": 0, "code": b"", "storage": {}}
    state[genesis.fee.vault]["storage"].clear()
    assert genesis.genesis_state()[genesis.fee.vault]["storage"], "each call returns fresh dicts"


def test_vault_storage_words_for_upfront_mode_and_release_share(vault_code):
    raw = example()
    raw["config"]["feePlugin"].update(consumption="upfront", initialReleaseBps=2500, lowBalance=0)
    storage = load_genesis(raw).genesis_state()[bytes.fromhex(VAULT[2:])]["storage"]
    assert (storage[SLOT_CONSUMPTION_MODE], storage[SLOT_INITIAL_RELEASE_BPS]) == (1, 2500)
    assert SLOT_LOW_BALANCE not in storage
    assert list(storage) == sorted(storage)
    assert storage == vault_storage(load_genesis(raw).fee)


def test_genesis_params_are_post_merge_header_fields():
    raw = example()
    raw["extraData"] = "0xcafe"
    assert load_genesis(raw).genesis_params() == {
        "timestamp": 1735689600,
        "gas_limit": 30_000_000,
        "base_fee_per_gas": 10**9,
        "coinbase": bytes.fromhex("00" * 17 + "0c01b5"),
        "extra_data": b"\xca\xfe",
        "difficulty": 0,
        "nonce": b"\x00" * 8,
        "mix_hash": b"\x00" * 32,
    }


# -- source_hash and immutability ------------------------------------------------------

# One change per Genesis / FeeConfig / AllocAccount field (and adding an account).
CHANGES = [
    ("config.chainId", 1338),
    ("config.fork", "cancun"),
    ("config.headerRules", "ethereum"),
    ("timestamp", "1735689601"),
    ("gasLimit", "30000001"),
    ("baseFeePerGas", "1000000001"),
    ("coinbase", "0x00000000000000000000000000000000000c01b6"),
    ("extraData", "0x00"),
    (f"{FEE}.vault", "0x000000000000000000000000000000000000fee1"),
    (f"{FEE}.operator", "0x00000000000000000000000000000000000000aa"),
    (f"{FEE}.treasury", "0x00000000000000000000000000000000007e5a58"),
    (f"{FEE}.lotValiditySeconds", "2592001"),
    (f"{FEE}.consumption", "upfront"),
    (f"{FEE}.initialReleaseBps", 1),
    (f"{FEE}.minDeposit", "1000000000000001"),
    (f"{FEE}.maxLiveLots", 15),
    (f"{FEE}.lowBalance", "10000000000000001"),
    (f"{FEE}.noAccount", "native"),
    (f"{A}.balance", "1000000000000000000001"),
    (f"{A}.nonce", 1),
    (f"{A}.code", "0x00"),
    (f"{A}.storage", {"0x0": "0x1"}),
    ("alloc.0x00000000000000000000000000000000000000bb", {"balance": "0"}),
]


def test_source_hash_is_stable_and_changes_with_every_field():
    base = load_genesis(example())
    assert base.source_hash == load_genesis(EXAMPLE).source_hash and len(base.source_hash) == 32
    hashes = {base.source_hash}
    for path, value in CHANGES:
        changed = load_genesis(mutate(path, value))
        assert changed != base, path
        assert changed.source_hash not in hashes, path
        hashes.add(changed.source_hash)


def test_canonical_encoding_is_pinned():
    """The preimage format is part of what recognises a genesis: changing it must be deliberate."""
    genesis = load_genesis({
        "config": {"chainId": 7, "fork": "cancun", "feePlugin": {"layoutVersion": 3,
            "vault": "0x" + "00" * 18 + "fee0", "operator": "0x" + "11" * 20,
            "treasury": "0x" + "22" * 20, "lotValiditySeconds": 60, "minDeposit": 1, "maxLiveLots": 2}},
        "timestamp": 5, "gasLimit": 21000, "baseFeePerGas": 1,
        "alloc": {"0x" + "33" * 20: {"balance": "0x10", "storage": {"0x2": "0x9"}}},
    })
    expected = (
        '{"alloc":[["0x' + "33" * 20 + '",16,0,"0x",[[2,9]]]],"baseFeePerGas":1,"chainId":7,'
        '"coinbase":"0x' + "00" * 20 + '","extraData":"0x","feePlugin":{"consumption":0,'
        '"initialReleaseBps":0,"layoutVersion":3,"lotValiditySeconds":60,"lowBalance":0,'
        '"maxLiveLots":2,"minDeposit":1,"noAccount":"reject","operator":"0x' + "11" * 20
        + '","treasury":"0x' + "22" * 20 + '","vault":"0x' + "00" * 18 + 'fee0"},"fork":"cancun",'
        '"format":"fee_plugin.genesis/2","gasLimit":21000,"headerRules":"fixed","timestamp":5}'
    ).encode()
    assert canonical_encoding(genesis) == expected
    assert genesis.source_hash == keccak(expected)


def test_everything_is_frozen_and_hashable():
    genesis = load_genesis(EXAMPLE)
    targets = [(genesis, "chain_id"), (genesis, "source_hash"), (genesis.fee, "max_live_lots"),
               (genesis.alloc[0][1], "balance")]
    for obj, name in targets:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, name, 1)
    assert isinstance(genesis.alloc, tuple) and isinstance(genesis.alloc[0][1].storage, tuple)
    assert {genesis: 1}[load_genesis(example())] == 1
    assert isinstance(genesis.fee, FeeConfig) and isinstance(genesis, Genesis)


def test_replace_recomputes_the_source_hash():
    genesis = load_genesis(EXAMPLE)
    other = dataclasses.replace(genesis, chain_id=1)
    assert other.source_hash == keccak(canonical_encoding(other)) != genesis.source_hash
