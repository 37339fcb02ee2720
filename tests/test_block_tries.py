"""The one-pass block trie builder equals py-evm's (root and stored nodes), item for item."""
from eth.db.trie import _make_trie_root_and_nodes as py_evm_trie
from hypothesis import given
from hypothesis import strategies as st

from fee_plugin.block_tries import _index_key, ordered_trie_root_and_nodes

BOUNDARY_SIZES = (0, 1, 2, 15, 16, 17, 127, 128, 129, 255, 256, 257, 1000, 4097)


def test_index_keys_are_rlp_of_the_index():
    import rlp

    for index in (0, 1, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000):
        assert _index_key(index) == rlp.encode(index)


def test_boundary_sizes_match_py_evm():
    for size in BOUNDARY_SIZES:
        items = tuple(bytes([i % 251]) * (1 + i % 70) for i in range(size))
        assert ordered_trie_root_and_nodes(items) == py_evm_trie(items), size


@given(st.lists(st.binary(min_size=0, max_size=120), max_size=300))
def test_random_items_match_py_evm(items):
    assert ordered_trie_root_and_nodes(tuple(items)) == py_evm_trie(tuple(items))
