"""The committed FeeVault build artifact: runtime code, ABI, storage layout.

Loaded from package data so the plugin needs no compiler at run time
(contracts/build.py regenerates it; a test fails if it is stale).
"""
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Dict, Tuple

from eth_utils import function_abi_to_4byte_selector, to_bytes

ARTIFACT_NAME = "FeeVault.json"


@lru_cache(maxsize=1)
def vault_artifact() -> Dict[str, Any]:
    text = resources.files("fee_plugin").joinpath("artifacts", ARTIFACT_NAME).read_text()
    return json.loads(text)


def vault_runtime_code() -> bytes:
    return to_bytes(hexstr=vault_artifact()["runtimeBytecode"])


def vault_abi() -> Tuple[Dict[str, Any], ...]:
    return tuple(vault_artifact()["abi"])


def _abi_type(param: Dict[str, Any]) -> str:
    if param["type"].startswith("tuple"):
        inner = ",".join(_abi_type(component) for component in param["components"])
        return f"({inner}){param['type'][5:]}"
    return param["type"]


@dataclass(frozen=True)
class VaultFunction:
    name: str
    selector: bytes
    input_types: Tuple[str, ...]
    output_types: Tuple[str, ...]


@lru_cache(maxsize=None)
def vault_function(name: str) -> VaultFunction:
    for entry in vault_abi():
        if entry.get("type") == "function" and entry["name"] == name:
            return VaultFunction(
                name=name,
                selector=function_abi_to_4byte_selector(entry),
                input_types=tuple(_abi_type(p) for p in entry["inputs"]),
                output_types=tuple(_abi_type(p) for p in entry.get("outputs", ())),
            )
    raise KeyError(f"the vault ABI has no function {name!r}")
