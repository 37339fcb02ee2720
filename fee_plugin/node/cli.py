"""fee-node: run a fee-plugin chain, inspect fee accounts, export audits, run the demo.

I/O only: every number comes from the node (JSON-RPC) or from the chain database through
the library's queries. Errors are one clear line and a non-zero exit, never a traceback.
"""
import csv
import io
import json
import sys
import urllib.error
import urllib.request
from typing import Any, Dict, List, Optional

import click
from eth_utils import is_address, to_checksum_address
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from .cli_support import CliError
from .cluster.cli import devnet
from .history_export import emit_rows, ether
from .run import run

console = Console()
DEFAULT_RPC = "http://127.0.0.1:8545"


def _address(value: str) -> str:
    if not is_address(value):
        raise CliError(f"not an address: {value!r} (expected 0x followed by 40 hex digits)")
    try:
        return to_checksum_address(value)
    except ValueError as err:
        raise CliError(f"bad address {value!r}: {err}") from None


def rpc_call(url: str, method: str, *params: Any) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            reply = json.loads(response.read())
    except (urllib.error.URLError, OSError) as err:
        raise CliError(f"cannot reach the node at {url}: {getattr(err, 'reason', err)} (is `fee-node run` up?)") from None
    if "error" in reply:
        raise CliError(f"{method}: {reply['error']['message']}")
    return reply["result"]


@click.group()
def main() -> None:
    """Prepaid fee accounts on a py-evm private chain."""


def _account_source(address: str, rpc: str, block: Optional[str]) -> Dict[str, Any]:
    return rpc_call(rpc, "fee_getAccount", address, block or "latest")


@main.command()
@click.argument("address")
@click.option("--rpc", default=DEFAULT_RPC, show_default=True, help="node JSON-RPC URL")
@click.option("--block", help="block number (0x-hex) or tag; default latest")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def account(address: str, rpc: str, block: Optional[str], as_json: bool) -> None:
    """Show a fee account: lots, available balance, status."""
    view = _account_source(_address(address), rpc, block)
    if as_json:
        click.echo(json.dumps(view, indent=2))
        return
    console.print(f"[bold]{view['address']}[/bold] at block {view['blockNumber']} (t={view['timestamp']})")
    colour = {"ACTIVE": "green", "LOW": "yellow", "EXHAUSTED": "red", "EXPIRED": "red", "FROZEN": "magenta"}.get(view["status"], "white")
    console.print(f"status [{colour}]{view['status']}[/{colour}]  available {ether(view['available'])} ETH  "
                  f"deposited {ether(view['deposited'])}  charged {ether(view['charged'])}  expired {ether(view['expired'])}")
    table = Table("lot", "amount", "used", "released", "available", "start", "expiry", "state")
    for lot in view["lots"]:
        table.add_row(str(lot["lot"]), ether(lot["amount"]), ether(lot["used"]), ether(lot["released"]),
                      ether(lot["available"]), str(lot["start"]), str(lot["expiry"]),
                      "expired" if lot["expired"] else "live")
    console.print(table)


HISTORY_CHUNK_BLOCKS = 2_000


def _block_number(rpc: str, tag: str) -> int:
    if tag == "earliest":
        return 0
    if tag in ("latest", "pending", "safe", "finalized"):
        return int(rpc_call(rpc, "eth_blockNumber"), 16)
    try:
        return int(tag, 0)
    except ValueError:
        raise CliError(f"bad block {tag!r}: use a number, 0x-hex, earliest or latest") from None


def _history_rows(address: str, rpc: str, start: str, end: str) -> List[Dict[str, Any]]:
    """The account's history, fetched in chunks of blocks with a progress bar on stderr."""
    first, last = _block_number(rpc, start), _block_number(rpc, end)
    rows: List[Dict[str, Any]] = []
    progress = Progress(TextColumn("history"), BarColumn(), MofNCompleteColumn(), TextColumn("blocks"),
                        console=Console(stderr=True), transient=True)
    with progress:
        task = progress.add_task("history", total=max(last - first + 1, 0))
        for low in range(first, last + 1, HISTORY_CHUNK_BLOCKS):
            high = min(low + HISTORY_CHUNK_BLOCKS - 1, last)
            rows.extend(rpc_call(rpc, "fee_getHistory", address, hex(low), hex(high)))
            progress.update(task, advance=high - low + 1)
    return rows


@main.command()
@click.argument("address")
@click.option("--rpc", default=DEFAULT_RPC, show_default=True, help="node JSON-RPC URL")
@click.option("--from", "start", default="earliest", help="first block (number, 0x-hex or tag)")
@click.option("--to", "end", default="latest", help="last block (number, 0x-hex or tag)")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
def history(address: str, rpc: str, start: str, end: str, fmt: str) -> None:
    """Every deposit, charge, expiry and status change of an account."""
    rows = _history_rows(_address(address), rpc, start, end)
    emit_rows(rows, fmt, sys.stdout)


@main.command()
@click.argument("address")
@click.option("--rpc", default=DEFAULT_RPC, show_default=True, help="node JSON-RPC URL")
@click.option("--block", default="latest", help="audit as of this block (0x-hex or tag)")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="file (default stdout)")
def audit(address: str, rpc: str, block: str, fmt: str, output: Optional[str]) -> None:
    """Regulator export: every lot and charge, with totals reconciled to the vault."""
    address = _address(address)
    view = _account_source(address, rpc, block)
    rows = _history_rows(address, rpc, "earliest", hex(view["blockNumber"]))
    deposited = sum(int(r["amount"]) for r in rows if r["event"] == "LotDeposited")
    charged = sum(int(r["fee"]) for r in rows if r["event"] == "FeeCharged")
    expired = sum(int(r["remainder"]) for r in rows if r["event"] == "LotExpired")
    reconciled = (deposited, charged, expired) == (int(view["deposited"]), int(view["charged"]), int(view["expired"]))
    identity = int(view["deposited"]) == int(view["charged"]) + int(view["expired"]) + int(view["remaining"])
    summary = {"address": address, "blockNumber": view["blockNumber"], "deposited": str(deposited),
               "charged": str(charged), "expired": str(expired), "remaining": view["remaining"],
               "vaultDeposited": view["deposited"], "vaultCharged": view["charged"], "vaultExpired": view["expired"],
               "reconciled": reconciled and identity}
    out = open(output, "w", newline="") if output else sys.stdout
    try:
        if fmt == "json":
            out.write(json.dumps({"summary": summary, "events": rows}, indent=2) + "\n")
        else:
            buffer = io.StringIO()
            emit_rows(rows, "csv", buffer)
            out.write(buffer.getvalue())
            out.write("\n# summary\n")
            writer = csv.writer(out)
            for key, value in summary.items():
                writer.writerow([key, value])
    finally:
        if output:
            out.close()
    if not summary["reconciled"]:
        raise CliError("history does not reconcile with the vault's totals")


@main.command()
@click.option("--days", default=40, show_default=True, type=click.IntRange(2, 365), help="simulated days")
def demo(days: int) -> None:
    """A scripted scenario on an in-process node with simulated time."""
    from .demo import run_demo

    run_demo(console, days)


main.add_command(run)
main.add_command(devnet)

if __name__ == "__main__":
    main()
