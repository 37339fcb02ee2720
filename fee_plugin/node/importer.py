"""Importing a block made elsewhere: full re-execution; the block must equal what we computed.

A follower (or a node fetching history) never trusts a block's header. py-evm's import
executes the block's transactions on the parent's state and compares the block it computes
with the one given: state root, receipts root (so every receipt and every fee log), gas
used, logs bloom, transactions root. The first difference refuses the block with an error
naming the block and the fields; everything the import wrote was in one block batch, so a
refused block leaves the database exactly as it was.
"""
from __future__ import annotations

import ast
import functools
import re
import threading
import time
import weakref

import rlp
from eth.abc import BlockAPI
from eth.exceptions import HeaderNotFound
from eth_utils import ValidationError, keccak

from ..block_tries import make_trie_root_and_nodes
from .builder import BlockBuilder, BuiltBlock

# py-evm's mismatch report: per differing field, " - header.state_root:" then the locally
# executed value and the proposed one on two lines.
_MISMATCH = re.compile(r"^ - ([\w.]+):\n\s*\(locally executed block\s*\) : (.*)\n"
                       r"\s*\(proposed block\s*\) : (.*)$", re.MULTILINE)
_BYTES_LITERAL = re.compile(r"b'(?:[^'\\]|\\.)*'" + r'|b"(?:[^"\\]|\\.)*"')


class _KeepsReceipts:
    """VM mixin: keeps the receipts the import computes (py-evm's `import_block` drops them;
    reading them back from the receipts trie costs a fifth of the import)."""

    kept = threading.local()

    def apply_all_transactions(self, transactions, base_header):
        header, receipts, computations = super().apply_all_transactions(transactions, base_header)
        _KeepsReceipts.kept.receipts = receipts
        return header, receipts, computations


@functools.cache
def _importing_chain_class(chain_class):
    vms = tuple((number, type(f"Importing{vm.__name__}", (_KeepsReceipts, vm), {}))
                for number, vm in chain_class.vm_configuration)
    return chain_class.configure(__name__=f"Importing{chain_class.__name__}", vm_configuration=vms)


_importing_chains: weakref.WeakKeyDictionary[BlockBuilder, object] = weakref.WeakKeyDictionary()


def _importing_chain(builder: BlockBuilder):
    """The builder's chain class on the builder's database, keeping the receipts it computes."""
    chain = _importing_chains.get(builder)
    if chain is None:
        chain = _importing_chains[builder] = _importing_chain_class(type(builder.chain))(builder.db)
    return chain


class BlockRejected(Exception):
    """A block this node cannot reproduce or link: it is never applied."""

    def __init__(self, number: int, block_hash: bytes, fields: tuple[str, ...], detail: str) -> None:
        super().__init__(f"block {number} (0x{block_hash.hex()}) rejected: {detail}")
        self.number = number
        self.block_hash = block_hash
        self.fields = fields


def decode_block(builder: BlockBuilder, data: bytes) -> BlockAPI:
    """The block in `data` (RLP), decoded with the VM of the block after the head."""
    number = builder.head().block_number + 1
    block_class = builder.chain.get_vm_class_for_block_number(number).get_block_class()
    try:
        return rlp.decode(data, sedes=block_class)
    except (rlp.DecodingError, rlp.DeserializationError) as err:
        raise BlockRejected(number, b"\x00" * 32, ("rlp",), f"rlp: not a block: {err}") from None


def import_block(builder: BlockBuilder, block: BlockAPI, encoded: bytes) -> BuiltBlock:
    """Re-execute `block` on its parent and store it, or raise BlockRejected (nothing written).

    The caller holds the node's producer lock: the builder's chain has one writer.
    """
    header = block.header
    try:
        parent = builder.chain.get_block_header_by_hash(header.parent_hash)
    except HeaderNotFound:
        raise BlockRejected(block.number, block.hash, ("parent_hash",),
                            f"parent_hash 0x{header.parent_hash.hex()} is not in this chain") from None
    if header.block_number != parent.block_number + 1:
        raise BlockRejected(block.number, block.hash, ("number",),
                            f"number {header.block_number} does not follow its parent's "
                            f"{parent.block_number}")
    if header.timestamp <= parent.timestamp:
        raise BlockRejected(block.number, block.hash, ("timestamp",),
                            f"timestamp {header.timestamp} is not above its parent's "
                            f"{parent.timestamp}")
    chain = _importing_chain(builder)
    _KeepsReceipts.kept.receipts = None
    started = time.perf_counter()
    with builder.db.block_batch():
        try:
            result = chain.import_block(block)
        except ValidationError as err:
            fields, detail = _explain(str(err))
            raise BlockRejected(block.number, block.hash, fields, detail) from None
        receipts = _KeepsReceipts.kept.receipts
        assert receipts is not None and len(receipts) == len(block.transactions)
    return BuiltBlock(result.imported_block, tuple(receipts), {}, encoded, source="imported",
                      seconds=time.perf_counter() - started)


def check_body(block: BlockAPI) -> None:
    """The body is the one the header commits to: transactions, uncles and withdrawals hash to
    the header's roots. The import compares them too, after execution; a caller that must tell
    a swapped body from a block that does not reproduce (history from a peer) checks first."""
    header = block.header
    bodies = [("header.transaction_root", make_trie_root_and_nodes(block.transactions)[0],
               header.transaction_root),
              ("header.uncles_hash", keccak(rlp.encode(block.uncles)), header.uncles_hash)]
    if hasattr(block, "withdrawals"):
        bodies.append(("header.withdrawals_root", make_trie_root_and_nodes(block.withdrawals)[0],
                       header.withdrawals_root))
    for field, computed, stated in bodies:
        if computed != stated:
            raise BlockRejected(block.number, block.hash, (field,),
                                f"{field} computed 0x{computed.hex()} from the block's body, "
                                f"block says 0x{stated.hex()}")


def _explain(message: str) -> tuple[tuple[str, ...], str]:
    """(differing fields, one line saying computed vs stated) from py-evm's import error."""
    found = _MISMATCH.findall(message)
    if not found:
        return (), " ".join(message.split())
    parts = [f"{field} computed {_hex(local)}, block says {_hex(stated)}"
             for field, local, stated in found]
    return tuple(field for field, _, _ in found), "; ".join(parts)


def _hex(value: str) -> str:
    """py-evm prints byte values as Python literals: show them as 0x-hex."""
    return _BYTES_LITERAL.sub(lambda m: "0x" + ast.literal_eval(m.group(0)).hex(), value.strip())
