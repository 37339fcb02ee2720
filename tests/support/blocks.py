"""RLP blocks shaped like Ethereum's (header fields 0..14) for the block log tests."""
from __future__ import annotations

import rlp
from eth_hash.auto import keccak


def make_block(number: int, parent_hash: bytes, payload: bytes = b"") -> tuple[bytes, bytes]:
    """(block bytes, block hash) of a block at `number` on `parent_hash`, carrying `payload`."""
    header = [parent_hash, b"\x00" * 32, b"\x00" * 20, b"\x00" * 32, keccak(payload), b"\x00" * 32,
              b"\x00" * 256, b"", number.to_bytes(8, "big").lstrip(b"\x00"), b"\x01", b"",
              number.to_bytes(8, "big").lstrip(b"\x00"), b"", b"\x00" * 32, b"\x00" * 8]
    header_rlp = rlp.encode(header)
    return rlp.encode([header, [payload] if payload else [], []]), keccak(header_rlp)


def make_chain(genesis_hash: bytes, count: int, first: int = 1,
               parent_hash: bytes | None = None) -> list[tuple[int, bytes, bytes, bytes]]:
    """`count` linked blocks from `first`: (number, parent hash, hash, bytes) each."""
    parent = genesis_hash if parent_hash is None else parent_hash
    chain = []
    for number in range(first, first + count):
        data, block_hash = make_block(number, parent, payload=b"block %d" % number)
        chain.append((number, parent, block_hash, data))
        parent = block_hash
    return chain
