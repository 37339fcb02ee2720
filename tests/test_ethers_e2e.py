"""ethers v6 (the real npm package, pinned in tests/js) against a real `fee-node run`, with
default settings: deposit, deploy an OpenZeppelin ERC-20, transfer, decode the vault's
events, listen over WebSocket and HTTP filters, a burst of concurrent sends, decoded
reverts, and fee refusals surfaced as INSUFFICIENT_FUNDS with the node's text.

The script's provider is `new JsonRpcProvider(url)` with no options, so ethers batches
requests made within 10 ms of each other (up to 100 per HTTP request) and polls every 4 s;
only one of the two 20-transaction bursts goes through an unbatched provider.

The script (tests/js/e2e.cjs) runs once for the module; each test checks one part of its
report. Node.js and the npm packages come from scripts/test (tests/support/npm.py); without
Node.js the module is skipped, except in CI where that is a failure.
"""
import json
import os
import subprocess

import pytest
from eth_account import Account

from fee_plugin.genesis import load_genesis

from .support.chain import ETHER
from .support import npm
from .support.node_process import REPO, NodeProcess, write_genesis
from .support.token import token_artifact

pytestmark = pytest.mark.slow

SCRIPT = REPO / "tests" / "js" / "e2e.cjs"
SCRIPT_TIMEOUT_SECONDS = 240
DEV = Account.from_key(b"\x01" * 32).address
NEWCOMER = Account.from_key(b"\x03" * 32).address
SMALL = Account.from_key(b"\x07" * 32)  # funded here; deposits 0.01 ether in the script


@pytest.fixture(scope="module")
def deps():
    missing = npm.node_missing()
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    return npm.install()


@pytest.fixture(scope="module")
def report(deps, tmp_path_factory):
    genesis_path = write_genesis(tmp_path_factory.mktemp("ethers") / "genesis.json",
                                 alloc={SMALL.address: 10 * ETHER})
    genesis = load_genesis(genesis_path)
    node = NodeProcess(genesis_path, extra=["--verbose"])
    try:
        env = dict(os.environ, FEE_JS_DEPS=str(deps), FEE_RPC_URL=node.url,
                   FEE_WS_URL=node.url.replace("http://", "ws://"),
                   FEE_VAULT="0x" + genesis.fee.vault.hex(),
                   FEE_VAULT_ARTIFACT=str(REPO / "fee_plugin" / "artifacts" / "FeeVault.json"),
                   FEE_EVM_VERSION=genesis.fork)
        done = subprocess.run(["node", str(SCRIPT)], env=env, capture_output=True, text=True,
                              timeout=SCRIPT_TIMEOUT_SECONDS)
    finally:
        node.stop()
    assert done.returncode == 0, (f"e2e.cjs failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}\n"
                                  f"node log:\n{''.join(node.lines[-60:])}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_token_artifact_matches_its_source(deps):
    """tests/js/Token.json (used by the web3.py tests) is what compile.cjs makes of Token.sol."""
    done = subprocess.run(["node", str(REPO / "tests" / "js" / "compile.cjs"), "prague"], capture_output=True,
                          text=True, timeout=SCRIPT_TIMEOUT_SECONDS, env=dict(os.environ, FEE_JS_DEPS=str(deps)))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == token_artifact()


def test_runs_the_pinned_client_versions(report):
    assert report["versions"]["ethers"] == "6.17.0"
    assert report["versions"]["solc"].startswith("0.8.30+")
    assert report["chainId"] == 1337


def test_the_provider_has_ethers_defaults_and_really_batches(report):
    """Batching on (100 requests per batch, 10 ms stall), 4 s polling, network detected; the
    batches carried the sends, estimates, receipt polls and filter polls, and errors inside
    a batch (reverts, refusals) reached the request they belong to."""
    assert report["defaults"] == {"pollingInterval": 4000, "batchMaxCount": 100, "batchStallTime": 10,
                                  "staticNetwork": None}
    wire = report["wire"]["defaults"]
    assert wire["batches"] >= 10 and wire["largestBatch"] >= 20, wire
    assert {"eth_sendRawTransaction", "eth_estimateGas", "eth_getTransactionReceipt", "eth_call",
            "eth_getFilterChanges"} <= set(wire["batchedMethods"]), wire
    # the burst's estimates, sends and receipt polls shared batches (20 of each here, where
    # the burst's continuations run before the 10 ms stall ends; at least two asserted)
    assert min(wire["largestBatchOf"].values()) >= 2, wire
    assert {"eth_call 3", "eth_estimateGas 3", "eth_sendRawTransaction -32000"} <= set(wire["batchedErrors"]), wire
    assert report["wire"]["unbatched"]["batches"] == 0
    assert report["wire"]["unbatched"]["requests"] >= 40


def test_first_deposit_pays_at_once_with_the_example_genesis(report):
    account = report["account"]
    assert account["status"] == "ACTIVE" and int(account["deposited"]) == ETHER
    # initialReleaseBps 1000: a tenth at once (the rest released per second over 30 days; an
    # integer rate may release its remainder at the start, which is less than a second's worth)
    released_per_second = (ETHER - ETHER // 10) // (30 * 86400)
    assert ETHER // 10 <= int(account["available"]) < ETHER // 10 + released_per_second


def test_erc20_deploys_with_default_settings(report):
    assert report["deploy"]["status"] == 1 and report["deploy"]["gasUsed"] > 500_000


def test_transfer_is_lot_paid_and_the_vault_events_decode(report):
    transfer = report["transfer"]
    assert transfer["vaultEvents"] == ["LotCharged", "FeeCharged"] and transfer["lotCharged"] == 1
    assert int(transfer["fee"]) == transfer["gasUsed"] * 2 * 10**9  # base fee 1 gwei + tip 1 gwei


def test_contract_on_transfer_fires_over_websocket_and_http_filters(report):
    expected = {"from": DEV, "value": "1234"}
    for transport in ("ws", "http"):
        (event,) = report["events"][transport]
        assert {k: event[k] for k in expected} == expected
    assert report["heard"] == {"ws": 41, "http": 41}


def test_query_filter_sees_mint_and_transfer(report):
    values = [event["value"] for event in report["queryFilter"]]
    assert values == [str(10**6 * ETHER), "1234"]
    assert report["queryFilter"][0]["from"] == "0x" + "00" * 20


@pytest.mark.parametrize("kind", ["batched", "unbatched"])
def test_twenty_concurrent_sends_are_all_mined(report, kind):
    burst = report["bursts"][kind]
    assert (burst["sent"], burst["mined"]) == (20, 20)
    assert sorted(burst["nonces"]) == list(range(min(burst["nonces"]), min(burst["nonces"]) + 20))
    assert int(report["recipientBalance"]) == 1234 + sum(range(1, 41))


def test_reverts_decode_as_custom_error_reason_and_panic(report):
    reverts = report["reverts"]
    assert reverts["custom"]["code"] == "CALL_EXCEPTION"
    assert reverts["custom"]["name"] == "ERC20InsufficientBalance"
    assert reverts["custom"]["args"][1:] == ["0", "1"]
    assert reverts["estimate"]["name"] == "ERC20InsufficientBalance"  # revert data in eth_estimateGas too
    assert reverts["reason"]["reason"] == "x must be positive"
    assert reverts["panic"]["name"] == "Panic" and "DIVIDE_BY_ZERO" in reverts["panic"]["reason"]


def test_fee_refusals_reach_ethers_as_insufficient_funds_with_the_text(report):
    no_account = report["refusals"]["noAccount"]
    assert no_account["code"] == "INSUFFICIENT_FUNDS"
    assert no_account["message"].startswith("insufficient funds for gas: ")
    assert NEWCOMER in no_account["message"] and "no fee account" in no_account["message"]
    assert no_account["data"]["available"] == "0" and no_account["data"]["releasedAt"] is None
    too_much = report["refusals"]["tooMuch"]
    assert too_much["code"] == "INSUFFICIENT_FUNDS"
    assert "prepaid fee available" in too_much["message"] and "enough is released at block time" in too_much["message"]
    data = too_much["data"]
    assert int(data["available"]) < int(data["required"]) == 1_000_000 * 3 * 10**9
    assert isinstance(data["releasedAt"], int)
    assert report["refusals"]["nonce"]["code"] == "NONCE_EXPIRED"


def test_pending_block_and_wallet_calls_parse(report):
    assert report["pending"]["hash"] is None and report["pending"]["number"] > 1
    assert report["walletCalls"]["code"] is True


def test_removing_listeners_uninstalls_filter_and_subscription(report):
    assert report["removed"] == {"uninstallFilter": 1, "unsubscribe": 1}
