"""An independent Merkle-Patricia proof checker (EIP-1186 proofs), written from the Yellow
Paper's trie definition for the tests: it shares no code with the node or the trie package."""
from typing import List, Tuple

import rlp
from eth_utils import keccak

EMPTY_TRIE_ROOT = keccak(rlp.encode(b""))


class BadProof(AssertionError):
    pass


def _nibbles(data: bytes) -> List[int]:
    return [n for byte in data for n in (byte >> 4, byte & 0x0F)]


def _hex_prefix(encoded: bytes) -> Tuple[List[int], bool]:
    """Appendix C: (nibbles, is_leaf) of a compact-encoded path."""
    nibbles = _nibbles(encoded)
    flag = nibbles[0]
    if flag not in (0, 1, 2, 3):
        raise BadProof(f"bad hex-prefix flag {flag}")
    return nibbles[1 if flag & 1 else 2:], flag >= 2


def verify(root: bytes, key: bytes, proof: List[bytes]) -> bytes:
    """The value stored at keccak(key) in the trie whose root hash is `root` (b"" if the
    proof shows it absent); raises BadProof unless every node hashes into its parent."""
    by_hash = {keccak(node): node for node in proof}
    if proof and keccak(proof[0]) != root:
        raise BadProof("the first node is not the root")
    path, at = _nibbles(keccak(key)), 0
    reference = root
    while True:
        if isinstance(reference, bytes):
            if len(reference) != 32:
                raise BadProof(f"reference of {len(reference)} bytes")
            if reference == EMPTY_TRIE_ROOT and at == 0 and not proof:
                return b""
            if reference not in by_hash:
                raise BadProof(f"no node hashing to 0x{reference.hex()}")
            node = rlp.decode(by_hash[reference])
        else:
            node = reference  # a node shorter than 32 bytes, inside its parent
        if len(node) == 17:
            if at == len(path):
                return node[16]
            child = node[path[at]]
            at += 1
            if child == b"":
                return b""
            reference = child
        elif len(node) == 2:
            segment, is_leaf = _hex_prefix(node[0])
            if path[at:at + len(segment)] != segment:
                return b""  # diverges: the key is absent
            at += len(segment)
            if is_leaf:
                if at != len(path):
                    raise BadProof("leaf before the end of the key")
                return node[1]
            reference = node[1]
        else:
            raise BadProof(f"node with {len(node)} items")
