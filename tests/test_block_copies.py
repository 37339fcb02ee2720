"""Shared-field copies equal py-evm's deep copies: same fields, same RLP, same hashes."""
import pytest
import rlp
from eth.vm.forks.byzantium import ByzantiumVM
from eth.vm.forks.cancun import CancunVM
from eth.vm.forks.prague import PragueVM
from hypothesis import given
from hypothesis import strategies as st

from fee_plugin.block_copies import HeaderUpdatesMixin, replace_fields, shared_fields_block_class

from .support.chain import ETHER, GENESIS_TIME, USER_KEYS, VALIDITY, VAULT, address, calldata, mine, new_chain, sign


@pytest.fixture(scope="module")
def mined():
    """A fee chain with one block of transfers and a deposit (logs, so a bloom)."""
    _, chain = new_chain()
    key, other = USER_KEYS[0], USER_KEYS[1]
    mine(chain, [sign(chain, key, VAULT, value=ETHER, data=calldata("deposit"), gas=300_000)], GENESIS_TIME + 10)
    txs = [sign(chain, key, VAULT, value=ETHER, data=calldata("deposit"), gas=300_000, nonce=1)]
    txs += [sign(chain, key, address(other), value=n + 1, gas=21_000, nonce=n + 2) for n in range(3)]
    block, receipts = mine(chain, txs, GENESIS_TIME + 10 + VALIDITY // 2)
    return chain, block, receipts


def test_the_fee_vm_uses_the_shared_fields_block_class(mined):
    chain, block, _ = mined
    vm_class = type(chain.get_vm())
    assert vm_class.get_block_class() is shared_fields_block_class(PragueVM.block_class)
    assert isinstance(block, PragueVM.block_class) and type(block) is vm_class.get_block_class()
    decoded = rlp.decode(rlp.encode(block), sedes=vm_class.get_block_class())
    assert decoded.hash == block.hash and rlp.encode(decoded) == rlp.encode(block)


@given(gas_used=st.integers(0, 2**63), bloom=st.integers(0, 2**2048 - 1), timestamp=st.integers(0, 2**63))
def test_a_header_with_replaced_fields_equals_py_evm_copy(mined, gas_used, bloom, timestamp):
    header = mined[1].header
    ours = replace_fields(header, gas_used=gas_used, bloom=bloom, timestamp=timestamp)
    theirs = header.copy(gas_used=gas_used, bloom=bloom, timestamp=timestamp)
    assert type(ours) is type(theirs)
    assert rlp.encode(ours) == rlp.encode(theirs) and ours.hash == theirs.hash
    assert header.gas_used == mined[1].header.gas_used  # the original is untouched


def test_a_block_copy_shares_fields_and_encodes_as_py_evm(mined):
    block = mined[1]
    header = block.header.copy(state_root=b"\x11" * 32)
    ours = block.copy(header=header)
    theirs = PragueVM.block_class.copy(block, header=header)  # rlp's deep copy
    assert rlp.encode(ours) == rlp.encode(theirs) and ours.hash == theirs.hash
    assert ours.transactions is block.transactions  # shared, not copied
    assert rlp.encode(block.copy()) == rlp.encode(block)
    assert rlp.encode(block.copy(block.header, block.transactions)) == rlp.encode(block)  # positional: rlp's


def test_an_unknown_field_is_refused(mined):
    with pytest.raises(AttributeError, match="no field"):
        replace_fields(mined[1].header, gas_usd=1)
    with pytest.raises(AttributeError, match="no field"):
        mined[1].copy(headers=mined[1].header)


def test_receipts_update_the_header_as_byzantium_does(mined):
    chain, block, receipts = mined
    vm = chain.get_vm()
    header = replace_fields(block.header, bloom=0, gas_used=0)  # as the block began
    assert any(receipt.bloom for receipt in receipts)
    ours = theirs = header
    for receipt in receipts:
        ours = HeaderUpdatesMixin.add_receipt_to_header(vm, ours, receipt)
        theirs = ByzantiumVM.add_receipt_to_header(vm, theirs, receipt)
        assert rlp.encode(ours) == rlp.encode(theirs)
    assert ours.bloom == block.header.bloom and ours.gas_used == block.header.gas_used


class _Tx:
    def __init__(self, blobs: int) -> None:
        self.blob_versioned_hashes = (b"\x01" * 32,) * blobs


class _Plain:
    """A transaction type without blob fields at all."""


@pytest.mark.parametrize("tx", [_Plain(), _Tx(0), _Tx(1), _Tx(6)], ids=["no-field", "0", "1", "6"])
def test_blob_gas_is_added_as_cancun_does(mined, tx):
    chain, block, _ = mined
    vm = chain.get_vm()
    header = replace_fields(block.header, blob_gas_used=131072)
    ours = HeaderUpdatesMixin.increment_blob_gas_used(vm, header, tx)
    theirs = CancunVM.increment_blob_gas_used(vm, header, tx)
    assert rlp.encode(ours) == rlp.encode(theirs)
