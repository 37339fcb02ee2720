"""A block's transaction, receipt and withdrawal tries, built in one sorted pass.

py-evm builds these tries with one HexaryTrie insert per item, re-encoding and re-hashing
the path to the root every time; for a block of a thousand transfers that costs more
than executing them. The keys are rlp(index) and the trie is fully determined by its
items, so it can be built bottom-up from the sorted keys instead: each node encoded and
hashed once. The result is the same root and the same stored nodes as py-evm's
`make_trie_root_and_nodes` (nodes whose RLP is 32 bytes or more, keyed by their hash);
tests/test_block_tries.py compares the two on random and boundary sizes, and every
conformance case imports blocks through it.
"""
from typing import Dict, List, Sequence, Tuple, Union

import rlp
from eth.constants import BLANK_ROOT_HASH, MAX_UNCLES
from eth_utils import ValidationError, keccak

Node = Union[bytes, List]


def fast_rlp(item) -> bytes:
    """RLP of bytes or nested lists of bytes (the general `rlp.encode` is much slower)."""
    if isinstance(item, bytes):
        if len(item) == 1 and item[0] < 0x80:
            return item
        return _length_prefix(len(item), 0x80) + item
    payload = b"".join([fast_rlp(x) for x in item])
    return _length_prefix(len(payload), 0xC0) + payload


def _length_prefix(length: int, offset: int) -> bytes:
    if length < 56:
        return bytes((offset + length,))
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((offset + 55 + len(encoded),)) + encoded


def _index_key(index: int) -> bytes:
    """rlp(index) as a big-endian integer: the key of item `index` (prefix-free)."""
    if index == 0:
        return b"\x80"
    raw = index.to_bytes((index.bit_length() + 7) // 8, "big")
    return raw if len(raw) == 1 and raw[0] < 0x80 else bytes((0x80 + len(raw),)) + raw


def _hex_prefix(nibbles: str, leaf: bool) -> bytes:
    flag = 2 if leaf else 0
    if len(nibbles) % 2:
        return bytes.fromhex(f"{flag + 1:x}{nibbles}")
    return bytes.fromhex(f"{flag:x}0{nibbles}")


def ordered_trie_root_and_nodes(items: Sequence[bytes]) -> Tuple[bytes, Dict[bytes, bytes]]:
    """(root hash, {hash: node}) of the trie mapping rlp(i) -> items[i]; an empty item is
    no entry at all (HexaryTrie deletes a key set to b"")."""
    return sorted_trie_root_and_nodes({_index_key(i): item for i, item in enumerate(items) if item})


def sorted_trie_root_and_nodes(items: Dict[bytes, bytes]) -> Tuple[bytes, Dict[bytes, bytes]]:
    """(root hash, {hash: node}) of the hexary trie holding `items`, whose keys must be
    prefix-free (rlp indexes, or hashed keys of one length); built bottom-up from the
    sorted keys, each node encoded and hashed once."""
    pairs = sorted((key.hex(), value) for key, value in items.items())
    if not pairs:
        return BLANK_ROOT_HASH, {}
    nodes: Dict[bytes, bytes] = {}

    def ref(node: Node) -> Node:
        encoded = fast_rlp(node)
        if len(encoded) < 32:
            return node  # embedded in its parent, as HexaryTrie does
        digest = keccak(encoded)
        nodes[digest] = encoded
        return digest

    def build(lo: int, hi: int, depth: int) -> Node:
        if hi - lo == 1:
            path, value = pairs[lo]
            return [_hex_prefix(path[depth:], True), value]
        first, last = pairs[lo][0], pairs[hi - 1][0]
        common = depth
        while first[common] == last[common]:  # keys are prefix-free: this stops in range
            common += 1
        if common > depth:
            return [_hex_prefix(first[depth:common], False), ref(branch(lo, hi, common))]
        return branch(lo, hi, depth)

    def branch(lo: int, hi: int, depth: int) -> Node:
        children: List[Node] = [b""] * 17
        start = lo
        while start < hi:
            nibble = pairs[start][0][depth]
            end = start
            while end < hi and pairs[end][0][depth] == nibble:
                end += 1
            children[int(nibble, 16)] = ref(build(start, end, depth + 1))
            start = end
        return children

    encoded = fast_rlp(build(0, len(pairs), 0))
    root = keccak(encoded)
    nodes[root] = encoded
    return root, nodes


def make_trie_root_and_nodes(items) -> Tuple[bytes, Dict[bytes, bytes]]:
    """Drop-in for py-evm's `eth.db.trie.make_trie_root_and_nodes` (objects with encode())."""
    return ordered_trie_root_and_nodes([item.encode() for item in items])


class BlockTriesMixin:
    """VM mixin: py-evm's block assembly and block validation with the one-pass tries."""

    def set_block_transactions_and_withdrawals(
        self, base_block, new_header, transactions, receipts, withdrawals=None
    ):
        """py-evm's, with the tries built in one sorted pass (block_tries.py): same roots,
        same nodes, without one HexaryTrie insert per transaction and receipt."""
        tx_root, tx_nodes = make_trie_root_and_nodes(transactions)
        self.chaindb.persist_trie_data_dict(tx_nodes)
        receipt_root, receipt_nodes = make_trie_root_and_nodes(receipts)
        self.chaindb.persist_trie_data_dict(receipt_nodes)
        block_fields = {"transactions": transactions}
        header_fields = {"transaction_root": tx_root, "receipt_root": receipt_root}
        if withdrawals:
            withdrawals_root, withdrawal_nodes = make_trie_root_and_nodes(withdrawals)
            self.chaindb.persist_trie_data_dict(withdrawal_nodes)
            block_fields["withdrawals"] = withdrawals
            header_fields["withdrawals_root"] = withdrawals_root
        block_fields["header"] = new_header.copy(**header_fields)
        return base_block.copy(**block_fields)

    def validate_block(self, block) -> None:
        """The checks of py-evm's VM.validate_block (and Cancun's blob checks), with the
        transaction root from block_tries: py-evm recomputes it with one trie insert per
        transaction, which costs more than the block's execution."""
        if block.is_genesis:
            return super().validate_block(block)
        if not isinstance(block, self.get_block_class()):
            raise ValidationError(f"{self!r} cannot validate a block of type {type(block).__name__}")
        header = block.header
        self.validate_header(header, self.chaindb.get_block_header_by_hash(header.parent_hash))
        tx_root, _ = make_trie_root_and_nodes(block.transactions)
        if tx_root != header.transaction_root:
            raise ValidationError(
                f"block {header.block_number}: transaction root {header.transaction_root.hex()} "
                f"!= {tx_root.hex()} computed from its transactions")
        if len(block.uncles) > MAX_UNCLES:
            raise ValidationError(f"block {header.block_number}: {len(block.uncles)} uncles > {MAX_UNCLES}")
        if keccak(rlp.encode(block.uncles)) != header.uncles_hash:
            raise ValidationError(f"block {header.block_number}: uncles do not match the uncles hash")
        if not self.chaindb.exists(header.state_root) and self.state.make_state_root() != header.state_root:
            raise ValidationError(f"block {header.block_number}: state root {header.state_root.hex()} "
                                  "not found and not the state's root")
        validate_blobs = getattr(self, "validate_block_blobs", None)
        if validate_blobs is not None:
            validate_blobs(block)
