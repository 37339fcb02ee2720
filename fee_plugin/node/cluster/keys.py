"""Where one chain lives in etcd: every key under `/fee/<chain id>/<genesis hash prefix>/`.

The genesis hash in the prefix keeps two chains with the same chain id (a re-genesis, a test
net) from ever reading each other's blocks through a shared etcd. Block numbers are zero-padded
to 20 digits (any uint64), so etcd's byte order of keys is block order.
"""
from __future__ import annotations

from dataclasses import dataclass

from .client import prefix_end

ROOT = b"/fee/"
GENESIS_PREFIX_BYTES = 8
BLOCK_NUMBER_DIGITS = 20


@dataclass(frozen=True)
class ChainKeys:
    chain_id: int
    genesis_hash: bytes

    def __post_init__(self) -> None:
        assert self.chain_id >= 0, f"chain id {self.chain_id} < 0"
        assert len(self.genesis_hash) == 32, f"genesis hash of {len(self.genesis_hash)} bytes"
        assert self.blocks_prefix < self.head < self.nodes_prefix < self.election

    @property
    def prefix(self) -> bytes:
        genesis = self.genesis_hash[:GENESIS_PREFIX_BYTES].hex().encode()
        return ROOT + str(self.chain_id).encode() + b"/" + genesis + b"/"

    @property
    def election(self) -> bytes:
        return self.prefix + b"producer"

    @property
    def head(self) -> bytes:
        return self.prefix + b"head"

    @property
    def log_end(self) -> bytes:
        """End of the range [blocks_prefix, log_end): every block key and the head, nothing else."""
        return self.head + b"\x00"

    @property
    def blocks_prefix(self) -> bytes:
        return self.prefix + b"blocks/"

    @property
    def blocks_end(self) -> bytes:
        return prefix_end(self.blocks_prefix)

    def block(self, number: int) -> bytes:
        assert 0 <= number < 10 ** BLOCK_NUMBER_DIGITS, f"block number {number} out of range"
        return self.blocks_prefix + str(number).zfill(BLOCK_NUMBER_DIGITS).encode()

    def block_number(self, key: bytes) -> int:
        assert key.startswith(self.blocks_prefix), f"{key!r} is not a block key"
        return int(key[len(self.blocks_prefix):])

    @property
    def nodes_prefix(self) -> bytes:
        return self.prefix + b"nodes/"

    def node(self, node_id: str) -> bytes:
        return self.nodes_prefix + node_id.encode()
