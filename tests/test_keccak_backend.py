"""Keccak through safe-pysha3 (chosen by fee_plugin) gives exactly pycryptodome's digests."""
import os
import subprocess
import sys

import pytest
from eth_hash.backends import pycryptodome, pysha3
from hypothesis import given
from hypothesis import strategies as st

import fee_plugin  # noqa: F401  (chooses the backend)


@given(st.binary(max_size=300))
def test_both_backends_compute_the_same_keccak(data):
    assert pysha3.backend.keccak256(data) == pycryptodome.backend.keccak256(data)

@pytest.mark.slow

def test_fee_plugin_selects_pysha3_unless_told_otherwise():
    code = ("import fee_plugin; from eth_hash.auto import keccak; keccak(b''); "
            "print(type(keccak._backend.keccak256.__self__).__module__)")
    env = {k: v for k, v in os.environ.items() if k != "ETH_HASH_BACKEND"}
    chosen = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert chosen.stdout.strip() == "eth_hash.backends.pysha3"
    told = subprocess.run([sys.executable, "-c", code], env=env | {"ETH_HASH_BACKEND": "pycryptodome"},
                          capture_output=True, text=True, check=True)
    assert told.stdout.strip() == "eth_hash.backends.pycryptodome"
