"""The committed vault artifact is what the Vyper source compiles to, with LAYOUT.md's slots."""
import importlib.util
import json

from fee_plugin import layout
from fee_plugin.artifact import vault_artifact

from .chain_helpers import REPO


def _build_module():
    spec = importlib.util.spec_from_file_location("vault_build", REPO / "contracts" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_artifact_matches_a_fresh_compile():
    build = _build_module()
    fresh = build.render(build.build_artifact())
    committed = (REPO / "fee_plugin" / "artifacts" / "FeeVault.json").read_text()
    assert json.loads(committed)["sourceSha256"] == json.loads(fresh)["sourceSha256"], (
        "contracts/FeeVault.vy changed: run `python contracts/build.py`"
    )
    assert committed == fresh, "artifact is stale: run `python contracts/build.py`"


def test_storage_layout_is_the_documented_consensus_layout():
    slots = {
        name: entry["slot"] for name, entry in vault_artifact()["storageLayout"]["storage_layout"].items()
    }
    assert slots == {
        "accounts": layout.SLOT_ACCOUNTS,
        "operator": layout.SLOT_OPERATOR,
        "treasury": layout.SLOT_TREASURY,
        "lotValidity": layout.SLOT_LOT_VALIDITY,
        "minDeposit": layout.SLOT_MIN_DEPOSIT,
        "maxLiveLots": layout.SLOT_MAX_LIVE_LOTS,
        "lowBalance": layout.SLOT_LOW_BALANCE,
        "consumptionMode": layout.SLOT_CONSUMPTION_MODE,
        "initialReleaseBps": layout.SLOT_INITIAL_RELEASE_BPS,
    }


def test_abi_has_no_path_to_move_credit_between_users_or_withdraw():
    functions = sorted(e["name"] for e in vault_artifact()["abi"] if e["type"] == "function")
    assert functions == sorted([
        # users
        "deposit", "sweepExpired",
        # operator
        "grant", "setLotValidity", "setMinDeposit", "freeze", "unfreeze",
        # views
        "available", "status", "lotCount", "liveLots", "lot", "totals", "recorded", "isFrozen",
        "operator", "treasury", "lotValidity", "minDeposit", "maxLiveLots", "lowBalance",
        "consumptionMode", "initialReleaseBps",
    ])
    payable = sorted(e["name"] for e in vault_artifact()["abi"]
                     if e["type"] == "function" and e["stateMutability"] == "payable")
    assert payable == ["deposit", "grant"]
