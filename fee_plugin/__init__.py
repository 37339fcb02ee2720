"""fee_plugin: prepaid, earmarked fee accounts for py-evm private chains.

Public entry points: load_genesis (validate a genesis file), build_chain (a py-evm
MiningChain whose transactions pay fees from fee lots), fee_account (an account at the head).
"""
import os

# eth-hash picks pycryptodome before safe-pysha3 when both are installed; the same
# Keccak-256 costs ~3x more there, a third of a node's admission work (measured:
# benchmarks/README.md). Chosen before eth-hash's first use; ETH_HASH_BACKEND still wins.
os.environ.setdefault("ETH_HASH_BACKEND", "pysha3")
from .chain import GenesisMismatchError, build_chain
from .payment import FeeRefusal, FeeValidationError
from .genesis import Genesis, GenesisError, load_genesis
from .lots import Status
from .query import CallError, FeeAccountView, call_latest, call_vault, fee_account
from .vm import fee_vm_class

__all__ = [
    "CallError",
    "FeeAccountView",
    "FeeRefusal",
    "FeeValidationError",
    "Genesis",
    "GenesisError",
    "GenesisMismatchError",
    "Status",
    "build_chain",
    "call_latest",
    "call_vault",
    "fee_account",
    "fee_vm_class",
    "load_genesis",
]
