"""Genesis loading: the example loads, every malformed field is named by its path, the vault
predeploy carries the config, and source_hash identifies a genesis whatever its spelling."""
import copy
import dataclasses
import json
import pickle
from pathlib import Path

import pytest
from eth_utils import keccak, to_checksum_address

from fee_plugin.genesis import (
    RESERVED_ADDRESSES,
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

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "genesis.json"
ARTIFACT = REPO / "fee_plugin" / "artifacts" / "FeeVault.json"

FEE = "config.feePlugin"
ALICE = "0x1a642f0E3c3aF545E7AcBD38b07251B3990914F1"  # dev key 0x01..01, funded in the example
OPERATOR = "0x5050A4F4b3f9338C3472dcC01A87C76A144b3c9c"  # dev key 0x02..02
VAULT = "0x000000000000000000000000000000000000fee0"
TREASURY = "0x00000000000000000000000000000000007e5a57"
A = f"alloc.{ALICE}"
DELETE = object()
BIG = {2**40: "2**40", 2**64: "2**64", 2**88: "2**88", 2**96: "2**96", 2**256: "2**256"}


def example():
    return json.loads(EXAMPLE.read_text())


def mutate(path, value):
    """The example with the field at a dotted path set to value (or deleted: DELETE)."""
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


def system(name):
    """The checksummed spelling of a reserved address, found by its description."""
    (address,) = [a for a, why in RESERVED_ADDRESSES.items() if name in why]
    return to_checksum_address(address)


# (field path, value put there or DELETE, expected error path, fragment of the reason)
CATALOGUE = [
    # top level
    ("config", DELETE, "config", "required field is missing"),
    ("config", [], "config", "expected a JSON object, got an array"),
    ("chainId", 1337, "chainId", "unknown field"),
    ("difficulty", "0x0", "difficulty", "unknown field"),
    ("gaslimit", "0x0", "gaslimit", "unknown field (did you mean 'gasLimit'?)"),
    ("timestamp", DELETE, "timestamp", "missing"),
    ("timestamp", "12abc", "timestamp", "not a decimal or 0x-hex quantity"),
    ("timestamp", "+12", "timestamp", "not a decimal or 0x-hex quantity"),
    ("timestamp", " 12", "timestamp", "not a decimal or 0x-hex quantity"),
    ("timestamp", "", "timestamp", "not a decimal or 0x-hex quantity"),
    ("timestamp", "0x", "timestamp", "not a decimal or 0x-hex quantity"),
    ("timestamp", "1_000", "timestamp", "not a decimal or 0x-hex quantity"),
    ("timestamp", "-1", "timestamp", "not a decimal or 0x-hex quantity"),
    ("timestamp", -1, "timestamp", "must be >= 0, got -1"),
    ("timestamp", 1.0, "timestamp", "expected an integer or a decimal/0x-hex string, got number 1.0"),
    ("timestamp", None, "timestamp", "got null"),
    ("timestamp", str(2**40), "timestamp", "must be < 2**40"),
    ("timestamp", hex(2**40 - 1), f"{FEE}.lotValiditySeconds", "timestamp + lotValiditySeconds must be < 2**40"),
    ("gasLimit", DELETE, "gasLimit", "missing"),
    ("gasLimit", "20999", "gasLimit", "must be >= 21000, got 20999"),
    ("gasLimit", str(2**63), "gasLimit", "must be < 2**63"),
    ("gasLimit", "30e6", "gasLimit", "not a decimal or 0x-hex quantity"),
    ("baseFeePerGas", DELETE, "baseFeePerGas", "missing"),
    ("baseFeePerGas", "0", "baseFeePerGas", "must be > 0, got 0"),
    ("baseFeePerGas", str(2**256), "baseFeePerGas", "must be < 2**256"),
    ("baseFeePerGas", "1" * 101, "baseFeePerGas", "got 101 digits"),
    ("baseFeePerGas", True, "baseFeePerGas", "got boolean true"),
    ("coinbase", "0xnothex", "coinbase", "expected a 0x-prefixed 20-byte hex address"),
    ("coinbase", ALICE[2:], "coinbase", "0x-prefixed"),
    ("coinbase", ALICE.replace("1a64", "1A64"), "coinbase", "bad EIP-55 checksum"),
    ("coinbase", 0, "coinbase", "20-byte hex address, got 0"),
    ("extraData", "0x" + "00" * 33, "extraData", "at most 32 bytes, got 33"),
    ("extraData", "0x0", "extraData", "hex bytes"),
    ("extraData", "abcd", "extraData", "0x-prefixed hex bytes"),
    ("alloc", DELETE, "alloc", "missing"),
    ("alloc", [], "alloc", "expected a JSON object"),
    # config
    ("config.chainId", DELETE, "config.chainId", "missing"),
    ("config.chainId", 0, "config.chainId", "must be > 0, got 0"),
    ("config.chainId", str(2**64), "config.chainId", "must be < 2**64"),
    ("config.chainId", "0xzz", "config.chainId", "not a decimal or 0x-hex"),
    ("config.chainId", 1.5, "config.chainId", "not an integer"),
    ("config.chainId", True, "config.chainId", "boolean"),
    ("config.fork", DELETE, "config.fork", "missing"),
    ("config.fork", "osaka", "config.fork", "must be one of cancun, prague; got 'osaka'"),
    ("config.fork", "shanghai", "config.fork", "one of cancun, prague"),
    ("config.fork", 1, "config.fork", "one of cancun, prague"),
    ("config.headerRules", "elastic", "config.headerRules", "one of fixed, ethereum"),
    ("config.chainID", 5, "config.chainID", "unknown field (did you mean 'chainId'?)"),
    ("config.homesteadBlock", 0, "config.homesteadBlock", "unknown field"),
    (FEE, DELETE, FEE, "missing"),
    (FEE, "yes", FEE, "expected a JSON object"),
    # config.feePlugin
    (f"{FEE}.vault", DELETE, f"{FEE}.vault", "missing"),
    (f"{FEE}.vault", "0x1234", f"{FEE}.vault", "20-byte hex address"),
    (f"{FEE}.vault", "0x" + "00" * 20, f"{FEE}.vault", "reserved: the zero address"),
    (f"{FEE}.vault", "0x" + "00" * 19 + "01", f"{FEE}.vault", "reserved: precompile 0x01"),
    (f"{FEE}.vault", "0x" + "00" * 19 + "0a", f"{FEE}.vault", "reserved: precompile 0x0a"),
    (f"{FEE}.vault", "0x" + "00" * 19 + "11", f"{FEE}.vault", "reserved: precompile 0x11"),
    (f"{FEE}.vault", system("4788"), f"{FEE}.vault", "EIP-4788 beacon roots"),
    (f"{FEE}.vault", system("2935"), f"{FEE}.vault", "EIP-2935"),
    (f"{FEE}.vault", system("7002"), f"{FEE}.vault", "EIP-7002"),
    (f"{FEE}.vault", system("7251"), f"{FEE}.vault", "EIP-7251"),
    (f"{FEE}.vault", system("6110"), f"{FEE}.vault", "deposit contract"),
    (f"{FEE}.vault", "0x" + "ff" * 19 + "fe", f"{FEE}.vault", "system-call sender"),
    (f"{FEE}.vault", ALICE, f"alloc.{ALICE}", "collides with config.feePlugin.vault"),
    (f"{FEE}.vault", ALICE.lower(), f"alloc.{ALICE}", "collides with config.feePlugin.vault"),
    (f"{FEE}.vault", OPERATOR, f"{FEE}.operator", "must differ from vault"),
    (f"{FEE}.operator", DELETE, f"{FEE}.operator", "missing"),
    (f"{FEE}.operator", OPERATOR.lower()[:-1] + "C", f"{FEE}.operator", "bad EIP-55 checksum"),
    (f"{FEE}.operator", OPERATOR.replace("5050", "5051"), f"{FEE}.operator", "bad EIP-55 checksum"),
    (f"{FEE}.operator", ["0x"], f"{FEE}.operator", "got an array"),
    (f"{FEE}.treasury", DELETE, f"{FEE}.treasury", "missing"),
    (f"{FEE}.treasury", VAULT, f"{FEE}.treasury", "must differ from vault"),
    (f"{FEE}.treasury", OPERATOR.upper().replace("0X", "0x"), f"{FEE}.treasury", "must differ from operator"),
    (f"{FEE}.lotValiditySeconds", DELETE, f"{FEE}.lotValiditySeconds", "missing"),
    (f"{FEE}.lotValiditySeconds", 0, f"{FEE}.lotValiditySeconds", "must be > 0, got 0"),
    (f"{FEE}.lotValiditySeconds", "0x0", f"{FEE}.lotValiditySeconds", "must be > 0, got 0"),
    (f"{FEE}.lotValiditySeconds", -5, f"{FEE}.lotValiditySeconds", "must be > 0, got -5"),
    (f"{FEE}.lotValiditySeconds", "-5", f"{FEE}.lotValiditySeconds", "not a decimal"),
    (f"{FEE}.lotValiditySeconds", 2592000.0, f"{FEE}.lotValiditySeconds", "not an integer"),
    (f"{FEE}.lotValiditySeconds", str(2**40), f"{FEE}.lotValiditySeconds", "must be < 2**40"),
    (f"{FEE}.lotValiditySeconds", str(2**40 - 100), f"{FEE}.lotValiditySeconds", "timestamp + lotValiditySeconds"),
    (f"{FEE}.consumption", "linear", f"{FEE}.consumption", "one of uniform, upfront"),
    (f"{FEE}.consumption", 0, f"{FEE}.consumption", "one of uniform, upfront; got 0"),
    (f"{FEE}.initialReleaseBps", 10_001, f"{FEE}.initialReleaseBps", "must be <= 10000, got 10001"),
    (f"{FEE}.initialReleaseBps", -1, f"{FEE}.initialReleaseBps", "must be >= 0, got -1"),
    (f"{FEE}.initialReleaseBps", "12.5", f"{FEE}.initialReleaseBps", "not a decimal"),
    (f"{FEE}.minDeposit", DELETE, f"{FEE}.minDeposit", "missing"),
    (f"{FEE}.minDeposit", "0", f"{FEE}.minDeposit", "must be > 0, got 0"),
    (f"{FEE}.minDeposit", str(2**88), f"{FEE}.minDeposit", "must be < 2**88"),
    (f"{FEE}.minDeposit", "1e15", f"{FEE}.minDeposit", "not a decimal"),
    (f"{FEE}.maxLiveLots", DELETE, f"{FEE}.maxLiveLots", "missing"),
    (f"{FEE}.maxLiveLots", 0, f"{FEE}.maxLiveLots", "must be > 0, got 0"),
    (f"{FEE}.maxLiveLots", 65, f"{FEE}.maxLiveLots", "must be <= 64, got 65"),
    (f"{FEE}.lowBalance", str(2**96), f"{FEE}.lowBalance", "must be < 2**96"),
    (f"{FEE}.lowBalance", -1, f"{FEE}.lowBalance", "must be >= 0"),
    (f"{FEE}.noAccount", "allow", f"{FEE}.noAccount", "one of reject, native"),
    (f"{FEE}.noAccount", None, f"{FEE}.noAccount", "got null"),
    (f"{FEE}.minDepositWei", "1", f"{FEE}.minDepositWei", "unknown field (did you mean 'minDeposit'?)"),
    (f"{FEE}.lotValidity", "1", f"{FEE}.lotValidity", "unknown field"),
    # alloc
    (f"{A}", "1000", A, "expected a JSON object"),
    (f"{A}.balance", DELETE, f"{A}.balance", "missing"),
    (f"{A}.balance", str(2**256), f"{A}.balance", "must be < 2**256"),
    (f"{A}.balance", hex(2**256), f"{A}.balance", "must be < 2**256"),
    (f"{A}.balance", -1, f"{A}.balance", "must be >= 0"),
    (f"{A}.balance", "1 ether", f"{A}.balance", "not a decimal"),
    (f"{A}.nonce", str(2**64), f"{A}.nonce", "must be < 2**64"),
    (f"{A}.nonce", "x", f"{A}.nonce", "not a decimal"),
    (f"{A}.code", "0xabc", f"{A}.code", "hex bytes"),
    (f"{A}.code", "6000", f"{A}.code", "0x-prefixed hex bytes"),
    (f"{A}.storage", [], f"{A}.storage", "expected a JSON object"),
    (f"{A}.storage", {"slot1": "0x1"}, f"{A}.storage.slot1", "not a decimal or 0x-hex"),
    (f"{A}.storage", {"0x1": "0x1g"}, f"{A}.storage.0x1", "not a decimal or 0x-hex"),
    (f"{A}.storage", {"0x1": hex(2**256)}, f"{A}.storage.0x1", "must be < 2**256"),
    (f"{A}.storage", {hex(2**256): "0x1"}, f"{A}.storage.{hex(2**256)}", "must be < 2**256"),
    (f"{A}.storage", {"0x01": "0x1", "1": "0x2"}, f"{A}.storage.1", "duplicate storage slot 0x1"),
    (f"{A}.weight", 1, f"{A}.weight", "unknown field"),
    (f"{A}.Balance", 1, f"{A}.Balance", "unknown field (did you mean 'balance'?)"),
    ("alloc.0xNOTANADDRESS", {"balance": "1"}, "alloc.0xNOTANADDRESS", "20-byte hex address"),
    ("alloc.0x1234", {"balance": "1"}, "alloc.0x1234", "20-byte hex address"),
    (f"alloc.{ALICE.replace('1a64', '1A64')}", {"balance": "1"}, f"alloc.{ALICE.replace('1a64', '1A64')}", "checksum"),
    (f"alloc.{ALICE.upper().replace('0X', '0x')}", {"balance": "1"}, f"alloc.{ALICE}", "duplicate address"),
    (f"alloc.{ALICE[2:].lower()}", {"balance": "1"}, f"alloc.{ALICE[2:].lower()}", "duplicate address"),
    (f"alloc.{VAULT}", {"balance": "1"}, f"alloc.{VAULT}", "collides with config.feePlugin.vault"),
    ("alloc", {7: {"balance": "1"}}, "alloc", "keys must be strings"),
]


def _row_id(row):
    value = "DELETE" if row[1] is DELETE else repr(row[1])
    return f"{row[0]}={value[:24]}"


@pytest.mark.parametrize("field, value, error_path, reason", CATALOGUE, ids=[_row_id(r) for r in CATALOGUE])
def test_malformed_field_is_named(field, value, error_path, reason):
    with pytest.raises(GenesisError) as err:
        load_genesis(mutate(field, value))
    assert (err.value.path, reason in err.value.why) == (error_path, True), str(err.value)
    assert str(err.value) == f"{err.value.path}: {err.value.why}"


@pytest.mark.parametrize("document", [[], "genesis", 1, None])
def test_document_that_is_not_an_object(document, tmp_path):
    source = tmp_path / "g.json"
    source.write_text(json.dumps(document))
    with pytest.raises(GenesisError) as err:
        load_genesis(source)
    assert err.value.path == "<root>" and "expected a JSON object" in err.value.why


def test_unknown_key_is_reported_before_missing_fields():
    raw = example()
    raw["config"]["feePlugin"]["minDepositWei"] = raw["config"]["feePlugin"].pop("minDeposit")
    with pytest.raises(GenesisError, match=r"^config\.feePlugin\.minDepositWei: unknown field"):
        load_genesis(raw)


def test_error_is_a_value_error_and_survives_pickling():
    err = GenesisError("config.feePlugin.lotValiditySeconds", "must be > 0, got 0")
    assert isinstance(err, ValueError)
    assert str(err) == "config.feePlugin.lotValiditySeconds: must be > 0, got 0"
    copy_ = pickle.loads(pickle.dumps(err))
    assert (copy_.path, copy_.why, str(copy_)) == (err.path, err.why, str(err))


# -- the file itself -------------------------------------------------------------------


def _load_text(tmp_path, text):
    source = tmp_path / "genesis.json"
    if isinstance(text, bytes):
        source.write_bytes(text)
    else:
        source.write_text(text)
    with pytest.raises(GenesisError) as err:
        load_genesis(str(source))
    return source, err.value


def test_missing_file_and_directory_name_the_path(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(GenesisError) as err:
        load_genesis(missing)
    assert err.value.path == str(missing) and "cannot read the genesis file" in err.value.why
    with pytest.raises(GenesisError) as err:
        load_genesis(tmp_path)
    assert err.value.path == str(tmp_path)


def test_invalid_json_gives_line_and_column(tmp_path):
    source, err = _load_text(tmp_path, '{\n  "config": {,}\n}')
    assert err.path == str(source)
    assert err.why.startswith("invalid JSON at line 2 column 14: ")


def test_non_utf8_file(tmp_path):
    source, err = _load_text(tmp_path, b'{"config": "\xff"}')
    assert err.path == str(source) and "not UTF-8" in err.why


def test_huge_integer_literal_is_a_field_error_not_a_crash(tmp_path):
    text = EXAMPLE.read_text().replace('"baseFeePerGas": "1000000000"', '"baseFeePerGas": ' + "9" * 5000)
    _, err = _load_text(tmp_path, text)
    assert err.path == "baseFeePerGas" and "must be < 2**256" in err.why


DUPLICATES = [
    ('"gasLimit": "30000000"', '"gasLimit": "30000000", "gasLimit": "1"', "gasLimit"),
    ('"maxLiveLots": 16', '"maxLiveLots": 16, "maxLiveLots": 17', f"{FEE}.maxLiveLots"),
    ('"fork": "prague"', '"fork": "prague", "fork": "cancun"', "config.fork"),
    (f'"{ALICE}": {{ "balance": "1000000000000000000000" }}',
     f'"{ALICE}": {{ "balance": "1", "balance": "2" }}', f"alloc.{ALICE}.balance"),
    ('"_comment": "Example', '"_comment": "x", "_comment": "Example', "_comment"),
]


@pytest.mark.parametrize("old, new, error_path", DUPLICATES, ids=[d[2] for d in DUPLICATES])
def test_duplicate_keys_in_any_object_are_named(tmp_path, old, new, error_path):
    text = EXAMPLE.read_text()
    assert old in text
    _, err = _load_text(tmp_path, text.replace(old, new, 1))
    assert (err.path, err.why) == (error_path, "duplicate key in a JSON object")


def test_utf8_bom_is_accepted(tmp_path):
    source = tmp_path / "bom.json"
    source.write_bytes(b"\xef\xbb\xbf" + EXAMPLE.read_bytes())
    assert load_genesis(source) == load_genesis(EXAMPLE)


def test_source_must_be_a_path_or_a_dict():
    with pytest.raises(TypeError):
        load_genesis(42)


# -- what a valid genesis gives ---------------------------------------------------------


def test_example_file_loads_with_its_values():
    genesis = load_genesis(EXAMPLE)
    assert (genesis.chain_id, genesis.fork, genesis.header_rules) == (1337, "prague", "fixed")
    assert (genesis.timestamp, genesis.gas_limit, genesis.base_fee_per_gas) == (1735689600, 30_000_000, 10**9)
    assert genesis.extra_data == b"" and genesis.coinbase == bytes.fromhex("00" * 17 + "0c01b5")
    fee = genesis.fee
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
    for key in ("lotValiditySeconds", "initialReleaseBps", "minDeposit", "maxLiveLots", "lowBalance"):
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
    fee.update(lotValiditySeconds=2**40 - 1, minDeposit=2**88 - 1, maxLiveLots=64, lowBalance=2**96 - 1,
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
        "config": {"chainId": 7, "fork": "cancun", "feePlugin": {
            "vault": "0x" + "00" * 18 + "fee0", "operator": "0x" + "11" * 20,
            "treasury": "0x" + "22" * 20, "lotValiditySeconds": 60, "minDeposit": 1, "maxLiveLots": 2}},
        "timestamp": 5, "gasLimit": 21000, "baseFeePerGas": 1,
        "alloc": {"0x" + "33" * 20: {"balance": "0x10", "storage": {"0x2": "0x9"}}},
    })
    expected = (
        '{"alloc":[["0x' + "33" * 20 + '",16,0,"0x",[[2,9]]]],"baseFeePerGas":1,"chainId":7,'
        '"coinbase":"0x' + "00" * 20 + '","extraData":"0x","feePlugin":{"consumption":0,'
        '"initialReleaseBps":0,"lotValiditySeconds":60,"lowBalance":0,"maxLiveLots":2,'
        '"minDeposit":1,"noAccount":"reject","operator":"0x' + "11" * 20 + '","treasury":"0x'
        + "22" * 20 + '","vault":"0x' + "00" * 18 + 'fee0"},"fork":"cancun",'
        '"format":"fee_plugin.genesis/1","gasLimit":21000,"headerRules":"fixed","timestamp":5}'
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
