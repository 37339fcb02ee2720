"""Receipts with logs blooms built from cached bloom bits.

A log's bloom bits are a pure function of its address and topics (three bits of a keccak),
so caching them cannot change a receipt; it saves the 7 keccaks per fee-log pair that
py-evm spends building a receipt and the 5 more it spends validating it
(../shared/notes/performance.md). The results are bit-for-bit py-evm's (tests/test_receipts.py).
"""
from functools import lru_cache
from typing import Iterable, Sequence, Tuple

from eth.abc import ReceiptAPI, SignedTransactionAPI
from eth.rlp.logs import Log
from eth.rlp.receipts import Receipt
from eth.vm.forks.berlin.transactions import TypedTransaction
from eth_bloom.bloom import get_bloom_bits
from eth_utils import ValidationError

LogEntry = Tuple[bytes, Tuple[int, ...], bytes]


@lru_cache(maxsize=1 << 16)
def bloom_bits(item: bytes) -> int:
    """The bits `item` sets in a logs bloom (eth_bloom's three keccak-derived bits)."""
    bits = 0
    for bit in get_bloom_bits(item):
        bits |= bit
    return bits


@lru_cache(maxsize=1 << 16)
def topic_bloom_bits(topic: int) -> int:
    return bloom_bits(topic.to_bytes(32, "big"))


def log_bloom(address: bytes, topics: Iterable[int]) -> int:
    bits = bloom_bits(address)
    for topic in topics:
        bits |= topic_bloom_bits(topic)
    return bits


def logs_bloom(log_entries: Iterable[LogEntry]) -> int:
    bloom = 0
    for address, topics, _ in log_entries:
        bloom |= log_bloom(address, topics)
    return bloom


def make_receipt(
    transaction: SignedTransactionAPI,
    status: bytes,
    gas_used: int,
    log_entries: Sequence[LogEntry],
) -> ReceiptAPI:
    """`transaction.make_receipt` with the bloom taken from cached bits (same receipt,
    same class: typed transactions wrap the inner receipt as py-evm's builder does)."""
    logs = [Log(address, topics, data) for address, topics, data in log_entries]
    inner = Receipt(state_root=status, gas_used=gas_used, logs=logs, bloom=logs_bloom(log_entries))
    if isinstance(transaction, TypedTransaction):
        return transaction.receipt_builder.typed_receipt_class(transaction.type_id, inner)
    return inner


def validate_receipt_bloom(receipt: ReceiptAPI) -> None:
    """py-evm's `validate_receipt` (every log address and topic is in the bloom)."""
    bloom = receipt.bloom
    for index, log in enumerate(receipt.logs):
        bits = bloom_bits(log.address)
        if bloom & bits != bits:
            raise ValidationError(
                f"The address from the log entry at position {index} is not present in "
                "the provided bloom filter."
            )
        for topic_index, topic in enumerate(log.topics):
            bits = topic_bloom_bits(topic)
            if bloom & bits != bits:
                raise ValidationError(
                    f"The topic at position {topic_index} from the log entry at position "
                    f"{index} is not present in the provided bloom filter."
                )
