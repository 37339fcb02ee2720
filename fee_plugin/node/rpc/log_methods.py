"""eth_getLogs and fee_* history: block scans bounded in range, results and time.

Headers are read first and their logs bloom decides whether the block's receipts are
read at all, so an idle range costs one header read per block.
"""
from typing import Any, Dict, List, Optional, Set, Tuple

from eth_bloom import BloomFilter

from ...history import account_history
from ...query import fee_account
from .base import MethodsBase
from .errors import INVALID_PARAMS, LIMIT_EXCEEDED, RpcError
from .limits import check_read_budget
from .params import address, hash32, positional
from .shapes import account_json, block_logs, log_json


def _bloom_may_match(bloom: int, addresses: Set[bytes], topic_sets: List[Set[int]]) -> bool:
    flt = BloomFilter(bloom)
    if addresses and not any(a in flt for a in addresses):
        return False
    for options in topic_sets:
        if options and not any(t.to_bytes(32, "big") in flt for t in options):
            return False
    return True


class LogMethods(MethodsBase):
    def block_range(self, from_tag: Any, to_tag: Any) -> Tuple[int, int]:
        start = self.header(from_tag if from_tag is not None else "latest").block_number
        end = self.header(to_tag if to_tag is not None else "latest").block_number
        if end < start:
            raise RpcError(INVALID_PARAMS, f"fromBlock {start} is after toBlock {end}")
        if end - start >= self.limits.log_range_blocks:
            raise RpcError(LIMIT_EXCEEDED, f"block range too large: at most "
                           f"{self.limits.log_range_blocks} blocks per request")
        return start, end

    def parse_filter(self, flt: Any) -> Tuple[Set[bytes], List[Set[int]]]:
        if not isinstance(flt, dict):
            raise RpcError(INVALID_PARAMS, "filter: expected an object")
        addresses = flt.get("address")
        addresses = [addresses] if isinstance(addresses, str) else (addresses or [])
        if not isinstance(addresses, list):
            raise RpcError(INVALID_PARAMS, "address: expected an address or a list of them")
        wanted = {address(a, "address") for a in addresses}
        topics = flt.get("topics") or []
        if not isinstance(topics, list) or len(topics) > 4:
            raise RpcError(INVALID_PARAMS, "topics: expected a list of at most 4 entries")
        topic_sets: List[Set[int]] = []
        for position, entry in enumerate(topics):
            options = [entry] if isinstance(entry, str) else (entry or [])
            if not isinstance(options, list):
                raise RpcError(INVALID_PARAMS, f"topics[{position}]: expected a hash or a list")
            topic_sets.append({int.from_bytes(hash32(t, f"topics[{position}]"), "big") for t in options})
        return wanted, topic_sets

    def matching_logs(self, numbers, wanted: Set[bytes], topic_sets: List[Set[int]],
                      limit: Optional[int] = None) -> List[Dict[str, Any]]:
        limit = self.limits.log_results if limit is None else limit
        out: List[Dict[str, Any]] = []
        for number in numbers:
            check_read_budget("eth_getLogs")
            header = self.chain.get_canonical_block_header_by_number(number)
            if not header.gas_used or not _bloom_may_match(header.bloom, wanted, topic_sets):
                continue
            block, receipts = self.block_and_receipts(header)
            for tx_index, tx, _, logs in block_logs(block, receipts):
                for log_index, log in logs:
                    if wanted and log.address not in wanted:
                        continue
                    if any(s and (i >= len(log.topics) or log.topics[i] not in s)
                           for i, s in enumerate(topic_sets)):
                        continue
                    if len(out) >= limit:
                        raise RpcError(LIMIT_EXCEEDED, f"query returned more than {limit} results; "
                                       "narrow the block range or the filter")
                    out.append(log_json(log, block.header, tx, tx_index, log_index))
        return out

    def rpc_eth_getLogs(self, params):
        (flt,) = positional(params, 1, 1)
        wanted, topic_sets = self.parse_filter(flt)
        if flt.get("blockHash"):
            numbers = [self.header_by_hash(hash32(flt["blockHash"], "blockHash")).block_number]
        else:
            start, end = self.block_range(flt.get("fromBlock"), flt.get("toBlock"))
            numbers = range(start, end + 1)
        return self.matching_logs(numbers, wanted, topic_sets)


class FeeMethods(LogMethods):
    def rpc_fee_getAccount(self, params):
        owner, tag = positional(params, 1, 2)
        return account_json(fee_account(self.chain, address(owner, "address"), self.header(tag)))

    def rpc_fee_getHistory(self, params):
        owner, from_tag, to_tag = positional(params, 1, 3)
        start, end = self.block_range(from_tag if from_tag is not None else "earliest", to_tag)
        events = account_history(self.chain, address(owner, "address"), start, end)
        return [event.as_json() for event in events]
