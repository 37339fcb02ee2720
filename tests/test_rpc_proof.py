"""eth_getProof: geth's shape, and every proof checked by an independent Merkle verifier
(tests/support/merkle.py) against the block's state root, with negative controls."""
import json

import pytest
import rlp
from eth_utils import decode_hex, keccak, to_checksum_address

from fee_plugin.node.rpc import RpcApi

from .support.chain import USER_KEYS, VAULT, address
from .support.merkle import EMPTY_TRIE_ROOT, BadProof, verify
from .support.nodes import clocked_node, deposit, transfer

ALICE, BOB = USER_KEYS[0], USER_KEYS[1]
GETH_KEYS = {"address", "accountProof", "balance", "codeHash", "nonce", "storageHash", "storageProof"}


def call(api, method, *params):
    reply = json.loads(api.handle_body(json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()))
    assert "error" not in reply, reply
    return reply["result"]


@pytest.fixture
def chain():
    node, clock = clocked_node()
    deposit(node, clock, ALICE)
    node.send_transaction(transfer(node, ALICE, 1, to=address(BOB), value=5))
    clock.advance(1)
    node.produce()
    return node, clock, RpcApi(node)


def checked_account(root: bytes, proof_json):
    """The account fields the proof proves, after checking it against `root`."""
    value = verify(root, decode_hex(proof_json["address"]), [decode_hex(n) for n in proof_json["accountProof"]])
    if value == b"":
        return None
    nonce, balance, storage_root, code_hash = rlp.decode(value)
    return int.from_bytes(nonce, "big"), int.from_bytes(balance, "big"), storage_root, code_hash


def test_account_proof_verifies_against_the_state_root(chain):
    node, _, api = chain
    root = decode_hex(call(api, "eth_getBlockByNumber", "latest", False)["stateRoot"])
    owner = "0x" + address(ALICE).hex()
    proof = call(api, "eth_getProof", owner, [], "latest")
    assert set(proof) == GETH_KEYS and proof["address"] == to_checksum_address(owner)
    nonce, balance, storage_root, code_hash = checked_account(root, proof)
    assert (hex(nonce), hex(balance)) == (proof["nonce"], proof["balance"]) == ("0x2", call(api, "eth_getBalance", owner))
    assert (storage_root, code_hash) == (decode_hex(proof["storageHash"]), decode_hex(proof["codeHash"]))
    assert storage_root == EMPTY_TRIE_ROOT and code_hash == keccak(b"")


def test_storage_proofs_of_the_vault_verify_present_and_absent_slots(chain):
    _, _, api = chain
    root = decode_hex(call(api, "eth_getBlockByNumber", "latest", False)["stateRoot"])
    keys = ["0x1", "0x04", "0x" + "ab" * 32]
    proof = call(api, "eth_getProof", to_checksum_address(VAULT), keys, "latest")
    storage_root = checked_account(root, proof)[2]
    assert proof["storageHash"] == "0x" + storage_root.hex() != "0x" + EMPTY_TRIE_ROOT.hex()
    shown = [entry["key"] for entry in proof["storageProof"]]
    assert shown == ["0x1", "0x4", "0x" + "ab" * 32]  # geth: a 32-byte key as given, else a quantity
    for entry, key in zip(proof["storageProof"], (1, 4, int("ab" * 32, 16))):
        value = verify(storage_root, key.to_bytes(32, "big"), [decode_hex(n) for n in entry["proof"]])
        assert hex(int.from_bytes(rlp.decode(value), "big") if value else 0) == entry["value"]
        assert int(entry["value"], 16) == int(call(api, "eth_getStorageAt", to_checksum_address(VAULT), hex(key)), 16)
    assert proof["storageProof"][0]["value"] != "0x0" and proof["storageProof"][2]["value"] == "0x0"


def test_absent_account_is_proven_absent(chain):
    _, _, api = chain
    root = decode_hex(call(api, "eth_getBlockByNumber", "latest", False)["stateRoot"])
    proof = call(api, "eth_getProof", "0x" + "99" * 20, ["0x0"], "latest")
    assert checked_account(root, proof) is None
    assert (proof["balance"], proof["nonce"], proof["storageHash"], proof["codeHash"]) == (
        "0x0", "0x0", "0x" + EMPTY_TRIE_ROOT.hex(), "0x" + keccak(b"").hex())
    assert proof["storageProof"] == [{"key": "0x0", "value": "0x0", "proof": []}]


def test_proofs_at_an_older_block_and_at_pending(chain):
    node, _, api = chain
    owner = "0x" + address(BOB).hex()
    old_root = decode_hex(call(api, "eth_getBlockByNumber", "0x1", False)["stateRoot"])
    assert checked_account(old_root, call(api, "eth_getProof", owner, [], "0x1"))[1] == 100 * 10**18
    node.send_transaction(transfer(node, ALICE, 2, to=address(BOB), value=7))
    pending = call(api, "eth_getBlockByNumber", "pending", False)
    proof = call(api, "eth_getProof", owner, [], "pending")
    assert checked_account(decode_hex(pending["stateRoot"]), proof)[1] == 100 * 10**18 + 12


def test_tampered_proofs_are_rejected(chain):
    _, _, api = chain
    root = decode_hex(call(api, "eth_getBlockByNumber", "latest", False)["stateRoot"])
    proof = call(api, "eth_getProof", "0x" + address(ALICE).hex(), [], "latest")
    nodes = [decode_hex(n) for n in proof["accountProof"]]
    last = bytearray(nodes[-1])
    last[-1] ^= 1
    with pytest.raises(BadProof):
        verify(root, address(ALICE), nodes[:-1] + [bytes(last)])
    with pytest.raises(BadProof):
        verify(keccak(b"another root"), address(ALICE), nodes)


def test_proof_request_limits(chain):
    _, _, api = chain
    reply = json.loads(api.handle_body(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_getProof",
                                                   "params": ["0x" + "11" * 20, ["0x0"] * 1025]}).encode()))
    assert reply["error"]["code"] == -32005
    reply = json.loads(api.handle_body(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_getProof",
                                                   "params": ["0x" + "11" * 20, ["0x" + "1" * 65]]}).encode()))
    assert reply["error"]["code"] == -32602
