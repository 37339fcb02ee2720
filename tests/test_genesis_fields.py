"""Genesis input rules: every malformed field, document or file is refused with a GenesisError
naming the offending path (docs/genesis.md, "Errors" and "Rules that apply everywhere")."""
import json
import pickle

import pytest
from eth_utils import to_checksum_address

from fee_plugin.genesis import RESERVED_ADDRESSES, GenesisError, load_genesis

from .support.genesis_example import (
    ALICE, A, DELETE, EXAMPLE, FEE, OPERATOR, VAULT, example, mutate,
)


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
    (f"{FEE}.layoutVersion", DELETE, f"{FEE}.layoutVersion", "required field is missing"),
    (f"{FEE}.layoutVersion", 2, f"{FEE}.layoutVersion", "layout 2 is no longer supported"),
    (f"{FEE}.layoutversion", 3, f"{FEE}.layoutversion", "unknown field (did you mean 'layoutVersion'?)"),
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
    (f"{FEE}.minDeposit", str(2**84), f"{FEE}.minDeposit", "must be < 2**84"),
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
