"""eth_getProof (EIP-1186): an account and some of its storage, with Merkle proofs from the
state trie, in geth's shape.

Proofs list the RLP of every node on the path from the root whose encoding is hashed
(the root always; a node shorter than 32 bytes sits inside its parent), as geth does; a
key that is absent is proven by the path to where it would be. Values come from the
same tries, so they are exactly what the proofs prove.
"""
from typing import Any, List, Tuple

import rlp
from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA3
from eth.rlp.accounts import Account
from eth_utils import big_endian_to_int, encode_hex, keccak, to_checksum_address
from trie import HexaryTrie

from .base import MethodsBase
from .errors import INVALID_PARAMS, LIMIT_EXCEEDED, RpcError
from .params import address, positional

MAX_STORAGE_KEYS = 1024  # storage proofs per request


def proof_nodes(trie: HexaryTrie, key: bytes) -> List[str]:
    nodes = trie.get_proof(key)
    encoded = [rlp.encode(node) for node in nodes]
    return [encode_hex(e) for i, e in enumerate(encoded) if i == 0 or len(e) >= 32]


def storage_key(value: Any, position: int) -> Tuple[int, str]:
    """(slot, the key as geth echoes it): a 32-byte hex key stays as given, a shorter one
    comes back as a quantity."""
    name = f"storageKeys[{position}]"
    if not isinstance(value, str) or not value.startswith("0x") or len(value) > 66:
        raise RpcError(INVALID_PARAMS, f"{name}: expected hex of at most 32 bytes")
    digits = value[2:] or "0"
    try:
        slot = int(digits, 16)
    except ValueError:
        raise RpcError(INVALID_PARAMS, f"{name}: expected hex of at most 32 bytes") from None
    return slot, value if len(digits) == 64 else hex(slot)


class ProofMethods(MethodsBase):
    def rpc_eth_getProof(self, params):
        owner, keys, tag = positional(params, 2, 3)
        owner = address(owner, "address")
        if not isinstance(keys, list):
            raise RpcError(INVALID_PARAMS, "storageKeys: expected a list")
        if len(keys) > MAX_STORAGE_KEYS:
            raise RpcError(LIMIT_EXCEEDED, f"storageKeys: at most {MAX_STORAGE_KEYS} per request")
        slots = [storage_key(k, i) for i, k in enumerate(keys)]
        header, db = self.read_point(tag)
        accounts = HexaryTrie(db, header.state_root)
        account_key = keccak(owner)
        raw = accounts.get(account_key)
        account = rlp.decode(raw, sedes=Account) if raw else Account(0, 0, BLANK_ROOT_HASH, EMPTY_SHA3)
        storage = HexaryTrie(db, account.storage_root)
        storage_proof = []
        for slot, shown in slots:
            slot_key = keccak(slot.to_bytes(32, "big"))
            value = storage.get(slot_key)
            storage_proof.append({
                "key": shown,
                "value": hex(big_endian_to_int(rlp.decode(value)) if value else 0),
                "proof": proof_nodes(storage, slot_key),
            })
        return {
            "address": to_checksum_address(owner),
            "accountProof": proof_nodes(accounts, account_key),
            "balance": hex(account.balance),
            "codeHash": encode_hex(account.code_hash),
            "nonce": hex(account.nonce),
            "storageHash": encode_hex(account.storage_root),
            "storageProof": storage_proof,
        }
