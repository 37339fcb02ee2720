"""Receipts built from cached bloom bits equal py-evm's own, and validate the same way."""
import pytest
from eth.vm.forks.prague import PragueVM
from eth_bloom import BloomFilter
from eth_utils import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from fee_plugin.receipts import logs_bloom, make_receipt, validate_receipt_bloom

from .support.chain import USER_KEYS, new_chain, sign

log_entries = st.lists(
    st.tuples(
        st.binary(min_size=20, max_size=20),
        st.lists(st.integers(0, 2**256 - 1), max_size=4).map(tuple),
        st.binary(max_size=64),
    ),
    max_size=6,
)


@given(log_entries)
def test_logs_bloom_equals_eth_bloom(entries):
    expected = BloomFilter()
    for address, topics, _ in entries:
        expected.add(address)
        for topic in topics:
            expected.add(topic.to_bytes(32, "big"))
    assert logs_bloom(entries) == int(expected)


@pytest.mark.parametrize("kind", ["legacy", "access_list", "dynamic"])
def test_receipt_equals_py_evm_receipt(kind):
    _, chain = new_chain()
    tx = sign(chain, USER_KEYS[0], b"\x42" * 20, value=1, kind=kind)
    entries = ((b"\x01" * 20, (1, 2**255), b"data"), (b"\x02" * 20, (), b""))
    ours = make_receipt(tx, b"\x01", 21_000, entries)
    stock = tx.make_receipt(b"\x01", 21_000, entries)
    assert type(ours) is type(stock) and ours == stock and ours.encode() == stock.encode()
    validate_receipt_bloom(ours)
    PragueVM.validate_receipt(ours)


def test_validation_rejects_what_py_evm_rejects():
    _, chain = new_chain()
    tx = sign(chain, USER_KEYS[0], b"\x42" * 20, value=1)
    entries = ((b"\x01" * 20, (7,), b""),)
    receipt = make_receipt(tx, b"\x01", 21_000, entries)
    for broken in (receipt.copy(bloom=0), receipt.copy(bloom=logs_bloom(((b"\x01" * 20, (), b""),)))):
        with pytest.raises(ValidationError):
            PragueVM.validate_receipt(broken)
        with pytest.raises(ValidationError):
            validate_receipt_bloom(broken)
