"""fee_plugin: prepaid, earmarked fee accounts for py-evm private chains.

Public entry points: load_genesis (validate a genesis file), build_chain (a py-evm
MiningChain whose transactions pay fees from fee lots), fee_account (an account at the head).
"""
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
