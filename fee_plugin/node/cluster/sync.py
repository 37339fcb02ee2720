"""History older than etcd keeps, fetched from another node and checked twice.

etcd keeps the last K blocks (`--etcd-keep`); a new or wiped node gets the blocks before
those from a peer (`debug_getRawHeader`, `debug_getRawBlock`). A peer is not trusted:
1. by hash: headers are fetched from the anchor down — the anchor is the parent hash of the
   oldest block etcd holds (etcd's history is the cluster's) — and each must hash to the
   parent hash of the one above it, down to this node's own head; a pinned (number, hash)
   from the operator must be on that chain. Only then is any block applied.
2. by re-execution: each block, fetched upwards, must hash to the header checked in 1 and is
   imported through the fee VM like any other (Node.import_block).
A lying peer is dropped for the next one; nothing it sent is applied.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import rlp
from eth_hash.auto import keccak

from ..importer import BlockRejected, check_body
from ..node import Node
from .blocklog import block_identity
from .peer import PeerError, PeerRpc

log = logging.getLogger(__name__)

HEADER_BATCH = 256
BLOCK_BATCH = 16  # blocks of up to ~1.5 MB each: a batch reply stays well under 25 MB
# What a block's header commits its body to: a mismatch here is a body swapped by the peer.
BODY_FIELDS = frozenset({"rlp", "header.transaction_root", "header.uncles_hash",
                         "header.withdrawals_root"})


class SyncFailed(Exception):
    """No peer could serve a chain that links to the anchor."""


@dataclass(frozen=True)
class Pin:
    """A block hash the operator vouches for (`--sync-pin NUMBER:0xHASH`)."""

    number: int
    hash: bytes

    @classmethod
    def parse(cls, text: str) -> Pin:
        number, _, digest = text.partition(":")
        value = bytes.fromhex(digest.removeprefix("0x"))
        if not number.isdigit() or len(value) != 32:
            raise ValueError(f"sync pin {text!r} is not NUMBER:0x<32-byte hash>")
        return cls(int(number), value)


class PeerSync:
    """Fetch blocks first..last from peers, linked to `anchor_hash` (the hash of block last)."""

    def __init__(self, node: Node, peers: Callable[[], dict[str, str]], *, pin: Pin | None = None,
                 connect: Callable[[str], PeerRpc] = PeerRpc,
                 stop: threading.Event | None = None) -> None:
        self.node = node
        self.peers = peers
        self.pin = pin
        self.connect = connect
        self.stop = stop or threading.Event()
        self.progress: tuple[int, int] | None = None  # (blocks applied, blocks to apply)

    def sync(self, last: int, anchor_hash: bytes) -> int:
        """Apply blocks head+1..last; returns how many. SyncFailed if no peer gives them."""
        failures = []
        for node_id, url in sorted(self.peers().items()):
            peer = self.connect(url)
            try:
                return self._sync_from(peer, last, anchor_hash)
            except PeerError as err:
                failures.append(f"{node_id}: {err}")
                log.warning("history sync from %s failed: %s", node_id, err)
            finally:
                peer.close()
                self.progress = None
        raise SyncFailed(f"no peer served blocks up to {last} linked to 0x{anchor_hash.hex()} "
                         f"({'; '.join(failures) or 'no peer registered'})")

    def _sync_from(self, peer: PeerRpc, last: int, anchor_hash: bytes) -> int:
        head = self.node.builder.head()
        first = head.block_number + 1
        if last < first:
            return 0
        expected = self._linked_hashes(peer, first, last, anchor_hash, head.hash)
        applied = 0
        self.progress = (0, last - first + 1)
        for start in range(first, last + 1, BLOCK_BATCH):
            numbers = list(range(start, min(last, start + BLOCK_BATCH - 1) + 1))
            for number, data in zip(numbers, self._fetch(peer, "debug_getRawBlock", numbers)):
                if self.stop.is_set():
                    return applied
                try:
                    stated, _, block_hash = block_identity(data)
                except ValueError as err:
                    raise PeerError(f"{peer.url}: block {number}: {err}") from None
                if stated != number or block_hash != expected[number]:
                    raise PeerError(f"{peer.url}: block {number} hashes to 0x{block_hash.hex()}, "
                                    f"its checked header to 0x{expected[number].hex()}")
                self._apply(peer, number, data)
                applied += 1
                self.progress = (applied, last - first + 1)
        log.info("history: %d blocks %d..%d from %s", applied, first, last, peer.url)
        return applied

    def _apply(self, peer: PeerRpc, number: int, data: bytes) -> None:
        """Import a block whose header is checked. A body that does not match that header is
        the peer's doing (PeerError); any other mismatch means the cluster's own history does
        not reproduce here, and BlockRejected halts the node."""
        try:
            block = self.node.decode_block(data)
            check_body(block)
            self.node.import_block(block, data)
        except BlockRejected as err:
            if set(err.fields) & BODY_FIELDS:
                raise PeerError(f"{peer.url}: block {number}'s body does not match its "
                                f"header: {err}") from None
            raise

    def _linked_hashes(self, peer: PeerRpc, first: int, last: int, anchor_hash: bytes,
                       base_hash: bytes) -> dict[int, bytes]:
        """Header hashes first..last from the peer, each the parent of the one above it, the
        top one the anchor and the bottom one's parent this node's head."""
        expected: dict[int, bytes] = {}
        want = anchor_hash
        for top in range(last, first - 1, -HEADER_BATCH):
            numbers = list(range(top, max(first, top - HEADER_BATCH + 1) - 1, -1))
            for number, header in zip(numbers, self._fetch(peer, "debug_getRawHeader", numbers)):
                digest = keccak(header)
                if digest != want:
                    raise PeerError(f"{peer.url}: header {number} hashes to 0x{digest.hex()}, "
                                    f"the chain above it says 0x{want.hex()}")
                expected[number] = digest
                want = _parent_hash(header, peer.url, number)
        if want != base_hash:
            raise PeerError(f"{peer.url}: its block {first} does not follow this node's block "
                            f"{first - 1} (parent 0x{want.hex()}, ours 0x{base_hash.hex()})")
        pin = self.pin
        if pin is not None and first <= pin.number <= last and expected[pin.number] != pin.hash:
            raise PeerError(f"{peer.url}: block {pin.number} is 0x{expected[pin.number].hex()}, "
                            f"pinned 0x{pin.hash.hex()}")
        return expected

    def _fetch(self, peer: PeerRpc, method: str, numbers: list[int]) -> list[bytes]:
        replies = peer.batch(method, [[hex(n)] for n in numbers])
        raws = []
        for number, reply in zip(numbers, replies):
            result = reply.get("result")
            if not isinstance(result, str) or not result.startswith("0x"):
                raise PeerError(f"{peer.url}: {method}({number}): {reply.get('error', result)}")
            try:
                raws.append(bytes.fromhex(result[2:]))
            except ValueError:
                raise PeerError(f"{peer.url}: {method}({number}) is not hex") from None
        return raws


def _parent_hash(header: bytes, url: str, number: int) -> bytes:
    try:
        fields = rlp.decode(header)
    except rlp.DecodingError as err:
        raise PeerError(f"{url}: header {number} is not RLP: {err}") from None
    if not isinstance(fields, list) or not fields or len(fields[0]) != 32:
        raise PeerError(f"{url}: header {number} has no parent hash")
    return bytes(fields[0])
