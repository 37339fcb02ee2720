"""An account's history rows as `fee-node history` prints them (json, csv, table); the
console's export writes exactly the same rows through this module."""
import csv
import json
from typing import Any, Dict, List

from rich.console import Console
from rich.table import Table

ETHER = 10**18

HISTORY_COLUMNS = ["blockNumber", "timestamp", "transactionHash", "logIndex", "event", "lot", "amount",
                   "fee", "gasUsed", "remainder", "availableAfter", "status", "old", "new", "start", "expiry"]


def ether(wei: Any) -> str:
    wei = int(wei)
    return f"{wei // ETHER}.{wei % ETHER:018d}".rstrip("0").rstrip(".") if wei else "0"


def status_name(code: Any) -> str:
    from ..lots import Status

    return Status(int(code)).name if code is not None else "?"


def emit_rows(rows: List[Dict[str, Any]], fmt: str, out, columns: List[str] = HISTORY_COLUMNS) -> None:
    """Write history rows as json, csv or a table (what `fee-node history` prints)."""
    if fmt == "json":
        out.write(json.dumps(rows, indent=2) + "\n")
    elif fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    else:
        table = Table("block", "event", "lot", "ETH", "detail", "tx")
        for row in rows:
            wei = row.get("amount", row.get("fee", row.get("remainder")))
            detail = {
                "FeeCharged": f"gas {row.get('gasUsed')}, available after {ether(row.get('availableAfter', 0))}",
                "StatusChanged": f"{status_name(row.get('old'))} -> {status_name(row.get('new'))}",
                "LotDeposited": f"valid {row.get('start')}..{row.get('expiry')}",
            }.get(row["event"], "")
            table.add_row(str(row["blockNumber"]), row["event"], str(row.get("lot", "")),
                          ether(wei) if wei is not None else "", detail, row["transactionHash"][:10] + "…")
        Console(file=out, width=120).print(table)
