"""The committed vault artifact is what the Vyper source compiles to, with LAYOUT.md's slots.

vyper is a test dependency: these tests never skip.
"""
import hashlib
import importlib.util
import json
import re
from pathlib import Path

import pytest

from fee_plugin import layout

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "contracts" / "FeeVault.vy"
ARTIFACT = REPO / "fee_plugin" / "artifacts" / "FeeVault.json"
LAYOUT_MD = REPO / "contracts" / "LAYOUT.md"


def _build_module():
    spec = importlib.util.spec_from_file_location("vault_build", REPO / "contracts" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _committed() -> dict:
    return json.loads(ARTIFACT.read_text())


def _documented_slots() -> dict:
    """The "Top-level slots" table of LAYOUT.md: {variable: slot}."""
    text = LAYOUT_MD.read_text()
    table = text.split("## Top-level slots", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*`(\w+)`\s*\|", table, flags=re.MULTILINE)
    return {name: int(slot) for slot, name in rows}

@pytest.mark.slow

def test_committed_artifact_matches_a_fresh_compile():
    build = _build_module()
    fresh = build.build_artifact()
    committed = _committed()
    assert committed["sourceSha256"] == hashlib.sha256(SOURCE.read_bytes()).hexdigest(), (
        "contracts/FeeVault.vy changed: run `python contracts/build.py`"
    )
    assert committed["compilerVersion"] == fresh["compilerVersion"]
    assert ARTIFACT.read_text() == build.render(fresh), "artifact is stale: run `python contracts/build.py`"


def test_artifact_is_rendered_deterministically():
    text = ARTIFACT.read_text()
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"
    assert sorted(_committed()) == sorted([
        "contractName", "compilerVersion", "sourceSha256", "abi", "runtimeBytecode", "storageLayout",
    ])
    assert _committed()["contractName"] == "FeeVault"
    assert _committed()["runtimeBytecode"].startswith("0x")


def test_storage_layout_is_the_documented_consensus_layout():
    documented = _documented_slots()
    assert documented == {
        "accounts": 0, "operator": 1, "treasury": 2, "lotValidity": 3, "minDeposit": 4,
        "maxLiveLots": 5, "lowBalance": 6, "consumptionMode": 7, "initialReleaseBps": 8,
    }
    storage = _committed()["storageLayout"]["storage_layout"]
    assert {name: entry["slot"] for name, entry in storage.items()} == documented
    assert all(entry["n_slots"] == 1 for entry in storage.values())
    assert storage["accounts"]["type"] == "HashMap[address, Account]"
    # fee_plugin.layout (the Python codec) agrees with both.
    assert {
        "accounts": layout.SLOT_ACCOUNTS,
        "operator": layout.SLOT_OPERATOR,
        "treasury": layout.SLOT_TREASURY,
        "lotValidity": layout.SLOT_LOT_VALIDITY,
        "minDeposit": layout.SLOT_MIN_DEPOSIT,
        "maxLiveLots": layout.SLOT_MAX_LIVE_LOTS,
        "lowBalance": layout.SLOT_LOW_BALANCE,
        "consumptionMode": layout.SLOT_CONSUMPTION_MODE,
        "initialReleaseBps": layout.SLOT_INITIAL_RELEASE_BPS,
    } == documented
    # The reentrancy lock lives in transient storage, never in a persistent slot.
    transient = _committed()["storageLayout"].get("transient_storage_layout", {})
    assert [entry["type"] for entry in transient.values()] == ["nonreentrant lock"]
