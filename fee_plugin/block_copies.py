"""Block and header updates that share unchanged fields instead of deep-copying them.

py-evm assembles a block by copying: `header.copy(...)` after every transaction (gas used
and bloom) and `block.copy(...)` twice when it seals (pack, then the state root), and
rlp's `copy` deep-copies every field it does not replace — for a block, every transaction
again. rlp objects are immutable, so sharing a field is as safe as copying it; measured on
a 480-transfer block, the deep copies were about a quarter of building it. The bytes, the
hashes and every value stay exactly those of py-evm's path (the builder's and the
importer's oracle tests compare whole blocks).
"""
from functools import lru_cache
from typing import Any, Type, TypeVar

from eth.abc import BlockAPI, BlockHeaderAPI, ReceiptAPI, TransactionFieldsAPI
from eth.vm.forks.cancun.state import get_total_blob_gas
from eth_bloom import BloomFilter

T = TypeVar("T")


def replace_fields(obj: T, **changes: Any) -> T:
    """`obj` with `changes`, sharing its other fields (an rlp Serializable's own class)."""
    values = obj.as_dict()
    unknown = set(changes) - set(values)
    if unknown:
        raise AttributeError(f"{type(obj).__name__} has no field(s) {', '.join(sorted(unknown))}")
    values.update(changes)
    return type(obj)(**values)


class SharedFieldsBlockMixin:
    """Block class mixin: `copy(**changes)` shares the fields it does not change."""

    def copy(self, *args: Any, **changes: Any):
        if args:  # positional overrides: rlp's own way
            return super().copy(*args, **changes)
        return replace_fields(self, **changes)


@lru_cache(maxsize=None)
def shared_fields_block_class(block_class: Type[BlockAPI]) -> Type[BlockAPI]:
    """The fork's block class with SharedFieldsBlockMixin (same fields, same RLP)."""
    return type(block_class.__name__, (SharedFieldsBlockMixin, block_class), {"__module__": __name__})


class HeaderUpdatesMixin:
    """VM mixin: the per-transaction header updates of py-evm, without deep copies."""

    def add_receipt_to_header(self, old_header: BlockHeaderAPI, receipt: ReceiptAPI) -> BlockHeaderAPI:
        # Byzantium's rule: the bloom accumulates, gas used is the receipt's cumulative gas.
        return replace_fields(
            old_header,
            bloom=int(BloomFilter(old_header.bloom) | receipt.bloom),
            gas_used=receipt.gas_used,
        )

    def increment_blob_gas_used(
        self, old_header: BlockHeaderAPI, transaction: TransactionFieldsAPI
    ) -> BlockHeaderAPI:
        blob_gas = get_total_blob_gas(transaction)
        if blob_gas == 0:  # the same header: nothing to add
            return old_header
        return replace_fields(old_header, blob_gas_used=old_header.blob_gas_used + blob_gas)
