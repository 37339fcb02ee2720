"""fee_* views for the console: history pages, a lot's burn-down series, a chain summary
and the status watch list. Each is bounded (blocks scanned, rows returned, time) and shows
only what the chain already makes public through fee_getAccount and fee_getHistory."""
from collections import defaultdict
from typing import Any, Dict, List

from eth_utils import to_checksum_address

from ...history import block_events, may_hold_events
from ...lots import Lot, released
from ...query import fee_account
from ...vault import FEE_CHARGED_TOPIC
from .base import MethodsBase
from .errors import INVALID_PARAMS, RpcError
from .limits import check_read_budget
from .params import address, positional, quantity

PAGE_EVENTS_MAX = 1_000
PAGE_BLOCKS_MAX = 100_000  # headers per page; blooms skip blocks without the account's logs
SUMMARY_BLOCKS_MAX = 1_000
WATCH_HORIZON_MAX = 10 * 365 * 86_400
WATCH_LIMIT_MAX = 1_000


def _int_option(options: Dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = options.get(name, default)
    if isinstance(value, str):
        value = quantity(value, name) if value.startswith("0x") else int(value) if value.isdigit() else None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RpcError(INVALID_PARAMS, f"{name}: an integer in {low}..{high}")
    return value


class ConsoleMethods(MethodsBase):
    status_index = None  # set by the node's wiring (run.py) when the index exists

    def _events_page(self, owner: bytes, first: int, last: int, limit: int):
        vault = self.node.genesis.fee.vault
        events: List[Dict[str, Any]] = []
        number = first
        while number <= last:
            check_read_budget("fee_getHistoryPage")
            header = self.chain.get_canonical_block_header_by_number(number)
            if may_hold_events(header, vault, owner):
                block, receipts = self.block_and_receipts(header)
                events.extend(e.as_json() for e in block_events(block, receipts, vault, owner))
            number += 1
            if len(events) >= limit:
                break
        return events, number

    def rpc_fee_getHistoryPage(self, params):
        """(address, {fromBlock, toBlock, limit}) -> {events, nextBlock}: pages through an
        account's history; nextBlock is null when toBlock was reached."""
        owner, options = positional(params, 1, 2)
        owner = address(owner, "address")
        options = options or {}
        if not isinstance(options, dict):
            raise RpcError(INVALID_PARAMS, "options: expected an object")
        head = self.head().block_number
        first = _int_option(options, "fromBlock", 0, 0, head)
        last = min(_int_option(options, "toBlock", head, 0, 2**63), head, first + PAGE_BLOCKS_MAX - 1)
        limit = _int_option(options, "limit", 200, 1, PAGE_EVENTS_MAX)
        events, next_block = self._events_page(owner, first, last, limit)
        done = next_block > min(_int_option(options, "toBlock", head, 0, 2**63), head)
        return {"events": events, "nextBlock": None if done else next_block, "head": head}

    def rpc_fee_getLotSeries(self, params):
        """(address, lot) -> the lot's burn-down: released, used and available at its start,
        at each charge, now, and at expiry (block times)."""
        owner, slot = positional(params, 2, 2)
        owner = address(owner, "address")
        if isinstance(slot, str):
            slot = quantity(slot, "lot")
        if isinstance(slot, bool) or not isinstance(slot, int) or slot < 0:
            raise RpcError(INVALID_PARAMS, "lot: a lot number of this account")
        view = fee_account(self.chain, owner, self.head())
        lot = next((lt for lt in view.lots if lt.slot == slot), None)
        if lot is None:
            raise RpcError(INVALID_PARAMS, f"lot {slot}: no live lot with that number")
        first = self._block_at_or_after(lot.start)
        events, _ = self._events_page(owner, first, self.head().block_number, PAGE_EVENTS_MAX)
        charges = [(e["timestamp"], int(e["amount"])) for e in events
                   if e["event"] == "LotCharged" and int(e["lot"]) == slot and lot.start <= e["timestamp"] < lot.expiry]
        policy = self.node.genesis.fee.release_policy

        def point(t: int, used: int) -> Dict[str, Any]:
            rel = released(Lot(slot, lot.amount_wei, 0, lot.start, lot.expiry), t, policy)
            return {"t": t, "released": str(rel), "used": str(used),
                    "available": str(max(rel - used, 0) if t < lot.expiry else 0)}

        points, used = [point(lot.start, 0)], 0
        for t, amount in charges:
            used += amount
            points.append(point(t, used))
        if view.timestamp < lot.expiry:
            points.append(point(view.timestamp, used))
        points.append(point(lot.expiry, used))
        return {"lot": slot, "amount": str(lot.amount_wei), "start": lot.start, "expiry": lot.expiry,
                "now": view.timestamp, "points": points}

    def _block_at_or_after(self, timestamp: int) -> int:
        low, high = 0, self.head().block_number
        while low < high:
            mid = (low + high) // 2
            if self.chain.get_canonical_block_header_by_number(mid).timestamp < timestamp:
                low = mid + 1
            else:
                high = mid
        return low

    def rpc_fee_getChainSummary(self, params):
        """(blocks) -> head, block rate, fees per block, top payers and treasury income over
        the last `blocks` blocks (at most 1,000)."""
        (count,) = positional(params, 0, 1)
        count = _int_option({"blocks": count if count is not None else 100}, "blocks", 100, 1, SUMMARY_BLOCKS_MAX)
        head = self.head()
        first = max(1, head.block_number - count + 1)
        vault = self.node.genesis.fee.vault
        per_block, payers = [], defaultdict(int)
        for number in range(first, head.block_number + 1):
            check_read_budget("fee_getChainSummary")
            header = self.chain.get_canonical_block_header_by_number(number)
            fees = transactions = 0
            if header.gas_used:
                block, receipts = self.block_and_receipts(header)
                transactions = len(block.transactions)
                previous = 0
                for tx, receipt in zip(block.transactions, receipts):
                    price = min(tx.max_fee_per_gas, tx.max_priority_fee_per_gas + header.base_fee_per_gas)
                    fees += (receipt.gas_used - previous) * price
                    previous = receipt.gas_used
                    for log in receipt.logs:
                        if log.address == vault and log.topics and log.topics[0] == FEE_CHARGED_TOPIC:
                            payers[log.topics[1].to_bytes(32, "big")[12:]] += int.from_bytes(log.data[:32], "big")
            per_block.append({"number": number, "timestamp": header.timestamp, "fees": str(fees),
                              "transactions": transactions})
        start = self.chain.get_canonical_block_header_by_number(first - 1)
        treasury = self.node.genesis.fee.treasury
        balance = self._balance_at(head, treasury)
        income = balance - self._balance_at(start, treasury)
        elapsed = per_block[-1]["timestamp"] - per_block[0]["timestamp"] if len(per_block) > 1 else 0
        top = sorted(payers.items(), key=lambda item: (-item[1], item[0]))[:10]
        return {
            "head": head.block_number, "timestamp": head.timestamp,
            "blocksPerMinute": round(60 * (len(per_block) - 1) / elapsed, 2) if elapsed else None,
            "blocks": per_block,
            "topPayers": [{"address": to_checksum_address(a), "fees": str(f)} for a, f in top],
            "treasury": {"address": to_checksum_address(treasury), "incomeWei": str(income),
                         "balanceWei": str(balance)},
            "accounts": self.status_index.status_counts() if self.status_index is not None else None,
        }

    def _balance_at(self, header, account: bytes) -> int:
        vm = self.chain.get_vm(header)
        state = vm.build_state(self.chain.chaindb.db, header, vm.chain_context, vm.previous_hashes)
        return state.get_balance(account)

    def rpc_fee_getWatchList(self, params):
        """(horizonSeconds, limit) -> accounts LOW/EXHAUSTED/EXPIRED now or within the
        horizon by time alone (the status index), soonest first."""
        horizon, limit = positional(params, 0, 2)
        horizon = _int_option({"horizon": horizon if horizon is not None else 86_400}, "horizon", 0, 0,
                              WATCH_HORIZON_MAX)
        limit = _int_option({"limit": limit if limit is not None else 100}, "limit", 100, 1, WATCH_LIMIT_MAX)
        if self.status_index is None:
            raise RpcError(INVALID_PARAMS, "the status index is not running on this node")
        rows = self.status_index.watch_list(horizon, limit)
        return [dict(row, address=to_checksum_address(row["address"])) for row in rows]

