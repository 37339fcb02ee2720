"""fee-node CLI: help everywhere, one-line errors, account/history/audit against a live node."""
import csv
import io
import json

import pytest
from click.testing import CliRunner
from eth_keys import keys

from fee_plugin import load_genesis
from fee_plugin.artifact import vault_function
from fee_plugin.node import ManualClock, Node
from fee_plugin.node.cli import main
from fee_plugin.node.rpc import HttpServer, RpcApi

from .support.chain import EXAMPLE_GENESIS

USER = keys.PrivateKey(b"\x01" * 32)
ADDRESS = USER.public_key.to_checksum_address()


@pytest.fixture(scope="module")
def rpc_url():
    """An in-process node with a deposit and two lot-paid transfers, served on a free port."""
    genesis = load_genesis(EXAMPLE_GENESIS)
    clock = ManualClock(genesis.timestamp + 10)
    node = Node(genesis, clock=clock)
    builder = node.chain.get_vm().get_transaction_builder()

    def send(nonce, to, value, data, gas):
        tx = builder.new_unsigned_dynamic_fee_transaction(
            genesis.chain_id, nonce, 10**9, 2 * 10**9, gas, to, value, data, ()
        ).as_signed_transaction(USER)
        node.send_transaction(tx)
        assert node.produce() is not None

    send(0, genesis.fee.vault, 10**18, vault_function("deposit").selector, 300_000)
    for nonce in (1, 2):
        clock.advance(86_400)
        send(nonce, b"\x42" * 20, 1, b"", 21_000)
    server = HttpServer(RpcApi(node), "127.0.0.1", 0).start()
    yield server.url
    server.stop()


@pytest.mark.parametrize("command", [[], ["run"], ["account"], ["history"], ["audit"], ["demo"]])
def test_every_command_has_help(command):
    result = CliRunner().invoke(main, command + ["--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["account", "0x12"], "error: not an address: '0x12'"),
        (["history", "nonsense"], "error: not an address"),
        (["run", "--genesis", "/nonexistent/genesis.json"], "error: bad genesis: /nonexistent/genesis.json: cannot read"),
        (["account", ADDRESS, "--rpc", "http://127.0.0.1:9"], "error: cannot reach the node at http://127.0.0.1:9"),
    ],
)
def test_errors_are_one_line_and_exit_non_zero(args, message):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert result.output.strip().startswith(message), result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_bad_genesis_field_is_named(tmp_path):
    raw = json.loads(EXAMPLE_GENESIS.read_text())
    raw["config"]["fork"] = "osaka"
    path = tmp_path / "g.json"
    path.write_text(json.dumps(raw))
    result = CliRunner().invoke(main, ["run", "--genesis", str(path)])
    assert result.exit_code == 1 and "config.fork" in result.output


def test_account_shows_lots_and_status(rpc_url):
    result = CliRunner().invoke(main, ["account", ADDRESS, "--rpc", rpc_url])
    assert result.exit_code == 0, result.output
    assert "status" in result.output and "available" in result.output and "ACTIVE" in result.output
    as_json = json.loads(CliRunner().invoke(main, ["account", ADDRESS, "--rpc", rpc_url, "--json"]).stdout)
    assert as_json["lots"][0]["amount"] == str(10**18)


def test_history_formats(rpc_url):
    out = CliRunner().invoke(main, ["history", ADDRESS, "--rpc", rpc_url, "--format", "csv"]).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["event"] for r in rows].count("FeeCharged") == 2
    assert rows[0]["event"] == "AccountOpened" and all(r["transactionHash"].startswith("0x") for r in rows)
    events = json.loads(CliRunner().invoke(main, ["history", ADDRESS, "--rpc", rpc_url, "--format", "json"]).stdout)
    assert len(events) == len(rows)
    assert "LotDeposited" in CliRunner().invoke(main, ["history", ADDRESS, "--rpc", rpc_url]).output


def test_audit_reconciles_with_the_vault(rpc_url, tmp_path):
    target = tmp_path / "audit.json"
    result = CliRunner().invoke(main, ["audit", ADDRESS, "--rpc", rpc_url, "--format", "json", "-o", str(target)])
    assert result.exit_code == 0, result.output
    report = json.loads(target.read_text())
    summary = report["summary"]
    assert summary["reconciled"] is True
    assert summary["charged"] == summary["vaultCharged"] != "0"
    assert int(summary["deposited"]) == int(summary["charged"]) + int(summary["expired"]) + int(summary["remaining"])
    csv_out = CliRunner().invoke(main, ["audit", ADDRESS, "--rpc", rpc_url]).stdout
    assert "# summary" in csv_out and "reconciled,True" in csv_out


def test_demo_runs_the_scenario():
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    for fragment in ("lot 1 expired", "rejected", "enough is released at block time", "EXPIRED", "never gas"):
        assert fragment in result.output, fragment
