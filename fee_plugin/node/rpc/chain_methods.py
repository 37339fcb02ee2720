"""eth_* reads of chain facts, account state, blocks and fee history."""
from typing import Any, List

from eth.abc import BlockAPI
from eth.exceptions import BlockNotFound, HeaderNotFound
from eth_utils import encode_hex

from .base import MethodsBase
from .errors import INVALID_PARAMS, RpcError
from .limits import check_read_budget
from .params import address, hash32, positional, quantity
from .shapes import block_json

CLIENT_VERSION = "fee-node/0.2.0/py-evm"
DEFAULT_PRIORITY_FEE_WEI = 10**9


class ChainMethods(MethodsBase):
    def rpc_web3__clientVersion(self, params):
        return CLIENT_VERSION

    def rpc_eth_chainId(self, params):
        return hex(self.node.genesis.chain_id)

    def rpc_net_version(self, params):
        return str(self.node.genesis.chain_id)

    def rpc_eth_blockNumber(self, params):
        return hex(self.head().block_number)

    def rpc_eth_gasPrice(self, params):
        return hex(self.node.pool.context.base_fee_wei + DEFAULT_PRIORITY_FEE_WEI)

    def rpc_eth_maxPriorityFeePerGas(self, params):
        return hex(DEFAULT_PRIORITY_FEE_WEI)

    def rpc_eth_syncing(self, params):
        return False

    def rpc_eth_accounts(self, params):
        return []

    # -- state ----------------------------------------------------------------------------

    def rpc_eth_getBalance(self, params):
        owner, tag = positional(params, 1, 2)
        return hex(self.state(tag).get_balance(address(owner, "address")))

    def rpc_eth_getTransactionCount(self, params):
        owner, tag = positional(params, 1, 2)
        owner = address(owner, "address")
        if tag == "pending":
            return hex(self.node.pool.next_nonce(owner))
        return hex(self.state(tag).get_nonce(owner))

    def rpc_eth_getCode(self, params):
        owner, tag = positional(params, 1, 2)
        return encode_hex(self.state(tag).get_code(address(owner, "address")))

    def rpc_eth_getStorageAt(self, params):
        owner, slot, tag = positional(params, 2, 3)
        value = self.state(tag).get_storage(address(owner, "address"), quantity(slot, "slot"))
        return encode_hex(value.to_bytes(32, "big"))

    # -- blocks ---------------------------------------------------------------------------

    def rpc_eth_getBlockByNumber(self, params):
        tag, full = positional(params, 1, 2)
        if tag == "pending":
            return block_json(self.pending.get().block, bool(full), pending=True)
        try:
            header = self.header(tag)
        except RpcError:
            if isinstance(tag, str) and tag.startswith("0x"):
                return None  # a future block: null, as geth answers
            raise
        return block_json(self.block(header), bool(full))

    def rpc_eth_getBlockByHash(self, params):
        block_hash, full = positional(params, 1, 2)
        try:
            header = self.chain.get_block_header_by_hash(hash32(block_hash, "hash"))
        except (BlockNotFound, HeaderNotFound):
            return None
        return block_json(self.block(header), bool(full))

    def rpc_eth_feeHistory(self, params):
        count, newest, percentiles = positional(params, 2, 3)
        count = count if isinstance(count, int) and not isinstance(count, bool) else quantity(count, "blockCount")
        count = max(1, min(count, self.limits.fee_history_blocks))
        percentiles = self._percentiles(percentiles)
        newest_header = self.header(newest)
        oldest = max(0, newest_header.block_number - count + 1)
        base_fees, ratios, rewards = [], [], []
        for number in range(oldest, newest_header.block_number + 1):
            check_read_budget("eth_feeHistory")
            h = self.chain.get_canonical_block_header_by_number(number)
            base_fees.append(hex(h.base_fee_per_gas))
            ratios.append(h.gas_used / h.gas_limit if h.gas_limit else 0.0)
            if percentiles:
                rewards.append([hex(x) for x in self._rewards(*self.block_and_receipts(h), percentiles)])
        next_header = self.chain.create_header_from_parent(newest_header)
        base_fees.append(hex(next_header.base_fee_per_gas))
        result = {"oldestBlock": hex(oldest), "baseFeePerGas": base_fees, "gasUsedRatio": ratios}
        if percentiles:
            result["reward"] = rewards
        return result

    def _percentiles(self, percentiles: Any) -> List[float]:
        if percentiles is None:
            return []
        limit = self.limits.fee_history_percentiles
        if not isinstance(percentiles, list) or len(percentiles) > limit:
            raise RpcError(INVALID_PARAMS, f"rewardPercentiles: a list of at most {limit} numbers")
        previous = -1.0
        for p in percentiles:
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 100 or p < previous:
                raise RpcError(INVALID_PARAMS, "rewardPercentiles: numbers in [0, 100], ascending")
            previous = p
        return percentiles

    def _rewards(self, block: BlockAPI, receipts, percentiles: List[float]) -> List[int]:
        base = block.header.base_fee_per_gas
        tips, previous = [], 0
        for tx, receipt in zip(block.transactions, receipts):
            tips.append((min(tx.max_priority_fee_per_gas, tx.max_fee_per_gas - base), receipt.gas_used - previous))
            previous = receipt.gas_used
        if not tips:
            return [0 for _ in percentiles]
        tips.sort()
        total = sum(g for _, g in tips)
        out = []
        for p in percentiles:
            threshold, acc = total * p / 100, 0
            for tip, gas in tips:
                acc += gas
                if acc >= threshold:
                    out.append(tip)
                    break
            else:
                out.append(tips[-1][0])
        return out
