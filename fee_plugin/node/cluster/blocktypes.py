"""What the block log stores and answers: heads, logged blocks, append outcomes, its errors."""
from __future__ import annotations

import enum
import json
from dataclasses import dataclass

import rlp
from eth_hash.auto import keccak
from rlp.codec import consume_length_prefix

from .client import EtcdError

# etcd's default --max-request-bytes; a block travels in one request with the head and compares.
DEFAULT_MAX_REQUEST_BYTES = 1_572_864
TXN_OVERHEAD_BYTES = 1024
HEADER_FIELDS_MIN = 9  # parent hash at 0, number at 8, in every fork's header


class BlockTooLarge(ValueError):
    """A block that cannot fit in one etcd request."""

    def __init__(self, number: int, size_bytes: int, max_block_bytes: int,
                 max_request_bytes: int) -> None:
        super().__init__(
            f"block {number} is {size_bytes} bytes > {max_block_bytes} bytes, the most one etcd "
            f"request carries (--max-request-bytes {max_request_bytes} minus "
            f"{TXN_OVERHEAD_BYTES} for the transaction): build smaller blocks or raise "
            f"--max-request-bytes on every member and here")
        self.number = number
        self.size_bytes = size_bytes
        self.max_block_bytes = max_block_bytes


class BlockLogCorrupt(EtcdError):
    """etcd holds, below the head, something no fenced append wrote: halt, do not import."""


class BlocksPruned(EtcdError):
    """A block below etcd's oldest kept block was asked for: fetch it from a peer."""

    def __init__(self, number: int, oldest: int | None) -> None:
        super().__init__(f"block {number} is no longer in etcd (oldest kept: {oldest}); "
                         f"fetch older blocks from another node")
        self.number = number
        self.oldest = oldest


@dataclass(frozen=True)
class Head:
    number: int
    hash: bytes

    def encode(self) -> bytes:
        return json.dumps({"number": self.number, "hash": "0x" + self.hash.hex()},
                          sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> Head:
        value = json.loads(data)
        return cls(int(value["number"]), bytes.fromhex(value["hash"][2:]))


def block_identity(data: bytes) -> tuple[int, bytes, bytes]:
    """(number, parent hash, block hash) of an RLP block, from its header alone."""
    try:
        _, kind, length, start = consume_length_prefix(data, 0)
        if kind is not list or start + length != len(data):
            raise ValueError("not a single RLP list")
        _, kind, header_length, header_start = consume_length_prefix(data, start)
        if kind is not list:
            raise ValueError("first item is not a header list")
        header_rlp = data[start:header_start + header_length]
        fields = rlp.decode(header_rlp)
    except rlp.DecodingError as exc:
        raise ValueError(f"block bytes are not RLP: {exc}") from exc
    if len(fields) < HEADER_FIELDS_MIN:
        raise ValueError(f"header has {len(fields)} fields < {HEADER_FIELDS_MIN}")
    return int.from_bytes(fields[8], "big"), bytes(fields[0]), keccak(header_rlp)


@dataclass(frozen=True)
class LoggedBlock:
    """A committed block's bytes, with the etcd revision that committed it."""

    number: int
    data: bytes
    revision: int

    def identity(self) -> tuple[int, bytes, bytes]:
        return block_identity(self.data)


class AppendStatus(enum.Enum):
    COMMITTED = "committed"
    HEAD_MOVED = "head moved"  # head is no longer the parent: another block got there first
    FENCED = "fenced"  # the election key is gone or re-created: this producer was deposed


@dataclass(frozen=True)
class AppendResult:
    status: AppendStatus
    head: Head  # the head after the append (ours if committed, else the one that won)
    revision: int

    @property
    def committed(self) -> bool:
        return self.status is AppendStatus.COMMITTED


@dataclass(frozen=True)
class KeepResult:
    oldest: int | None
    deleted: int
    compact_revision: int | None
