"""Compile FeeVault.vy into the committed artifact fee_plugin/artifacts/FeeVault.json.

The plugin reads the artifact at run time, so nodes need no compiler;
tests/test_vault_artifact.py fails when the artifact no longer matches the source.
Run: python contracts/build.py
"""
import hashlib
import json
from pathlib import Path

import vyper
from vyper.compiler import compile_code

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "FeeVault.vy"
ARTIFACT = HERE.parent / "fee_plugin" / "artifacts" / "FeeVault.json"


def build_artifact() -> dict:
    source = SOURCE.read_bytes()
    out = compile_code(
        source.decode(),
        contract_path=str(SOURCE.name),
        output_formats=["abi", "bytecode_runtime", "layout"],
    )
    return {
        "contractName": "FeeVault",
        "compilerVersion": vyper.__version__,
        "sourceSha256": hashlib.sha256(source).hexdigest(),
        "abi": out["abi"],
        "runtimeBytecode": out["bytecode_runtime"],
        "storageLayout": out["layout"],
    }


def render(artifact: dict) -> str:
    return json.dumps(artifact, sort_keys=True, indent=2) + "\n"


if __name__ == "__main__":
    ARTIFACT.write_text(render(build_artifact()))
    print(f"wrote {ARTIFACT.relative_to(HERE.parent)}")
