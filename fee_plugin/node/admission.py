"""What a transaction must satisfy to enter the pool: every check the block builder makes.

Messages are geth's texts ("nonce too low", "intrinsic gas too low", ...), which ethers,
Hardhat and web3.py recognise, followed by the numbers. `HeadContext` is the state of the
head block as admission sees it: each sender's nonce, balance, code and fee account, read
once per head, and the next block's time, base fee and gas limit.
"""
from dataclasses import dataclass
from typing import Any, Callable, Dict

from eth._utils.state import code_is_delegation_designation
from eth.abc import BlockHeaderAPI, SignedTransactionAPI
from eth.constants import CREATE_CONTRACT_ADDRESS, SECPK1_N
from eth.vm.forks.cancun.constants import BLOB_TX_TYPE, GAS_PER_BLOB
from eth.vm.forks.shanghai.constants import MAX_INITCODE_SIZE
from eth_utils import ValidationError

from ..genesis import Genesis
from ..vault import FeeAccount, load_account


class TxRejected(Exception):
    """The pool refuses a transaction; `data` travels as JSON-RPC error data."""

    def __init__(self, message: str, data: Any = None, reason: str = "invalid") -> None:
        """`reason` is a short fixed word (metrics label): fee, nonce, funds, gas, fee_cap,
        chain_id, signature, size, decode, known, underpriced, limit, full, sender, invalid."""
        super().__init__(message)
        self.message, self.data, self.reason = message, data, reason


@dataclass(frozen=True)
class SenderState:
    nonce: int
    balance_wei: int
    has_code: bool  # code that is not an EIP-7702 delegation (EIP-3607)
    account: FeeAccount


class HeadContext:
    """The head block's state for admission; next-block values for the checks."""

    def __init__(self, chain, header: BlockHeaderAPI, genesis: Genesis, now: Callable[[], float]) -> None:
        self.header = header
        self.genesis = genesis
        self._now = now
        vm = chain.get_vm(header)
        self._state = vm.build_state(chain.chaindb.db, header, vm.chain_context, vm.previous_hashes)
        child = chain.create_header_from_parent(header)
        self.base_fee_wei = child.base_fee_per_gas
        self.gas_limit = child.gas_limit
        self.executor_class = vm.get_state_class().transaction_executor_class
        self._senders: Dict[bytes, SenderState] = {}

    def next_timestamp(self) -> int:
        """The earliest time the next block can carry (the producer never stamps ahead)."""
        return max(self.header.timestamp + 1, int(self._now()))

    def sender(self, address: bytes) -> SenderState:
        found = self._senders.get(address)
        if found is None:
            state = self._state
            code = state.get_code(address)
            found = SenderState(
                nonce=state.get_nonce(address),
                balance_wei=state.get_balance(address),
                has_code=bool(code) and not code_is_delegation_designation(code),
                account=load_account(state, self.genesis.fee.vault, address),  # the whole chain
            )
            self._senders[address] = found
        return found


def check_static(tx: SignedTransactionAPI, raw_bytes: int, max_tx_bytes: int, ctx: HeadContext) -> None:
    """Checks that need no account state; raise TxRejected with geth's message."""
    if raw_bytes > max_tx_bytes:
        raise TxRejected(f"oversized data: transaction of {raw_bytes} bytes, limit {max_tx_bytes}", reason="size")
    chain_id = ctx.genesis.chain_id
    if tx.chain_id is None:
        raise TxRejected("only replay-protected (EIP-155) transactions allowed over RPC", reason="chain_id")
    if tx.chain_id != chain_id:
        raise TxRejected(f"invalid chain id for signer: have {tx.chain_id} want {chain_id}", reason="chain_id")
    if tx.gas > ctx.gas_limit:
        raise TxRejected(f"exceeds block gas limit: gas {tx.gas}, block gas limit {ctx.gas_limit}", reason="gas")
    if tx.gas < tx.intrinsic_gas:
        raise TxRejected(f"intrinsic gas too low: gas {tx.gas}, minimum needed {tx.intrinsic_gas}", reason="gas")
    floor_gas = ctx.executor_class.calc_data_floor_gas(tx, 0, 0)
    if tx.gas < floor_gas:
        raise TxRejected(f"insufficient gas for floor data gas cost: gas {tx.gas}, minimum needed {floor_gas}",
                         reason="gas")
    if tx.to == CREATE_CONTRACT_ADDRESS and len(tx.data) > MAX_INITCODE_SIZE:
        raise TxRejected(f"max initcode size exceeded: code size {len(tx.data)}, limit {MAX_INITCODE_SIZE}",
                         reason="size")
    if tx.max_priority_fee_per_gas > tx.max_fee_per_gas:
        raise TxRejected(
            f"max priority fee per gas higher than max fee per gas: tip {tx.max_priority_fee_per_gas}, "
            f"max fee {tx.max_fee_per_gas}", reason="fee_cap")
    if tx.max_fee_per_gas < ctx.base_fee_wei:
        raise TxRejected(
            f"max fee per gas less than block base fee: maxFeePerGas: {tx.max_fee_per_gas}, "
            f"baseFee: {ctx.base_fee_wei}", reason="fee_cap")
    if tx.s == 0 or tx.s > SECPK1_N // 2:
        raise TxRejected("invalid transaction v, r, s values", reason="signature")
    try:
        tx.validate()
    except ValidationError as err:
        raise TxRejected(f"invalid transaction: {err}") from None


def check_sender(tx: SignedTransactionAPI, sender: SenderState) -> None:
    if tx.nonce < sender.nonce:
        raise TxRejected(f"nonce too low: next nonce {sender.nonce}, tx nonce {tx.nonce}", reason="nonce")
    if sender.has_code:
        raise TxRejected("sender not an eoa: the sender has code (EIP-3607)", reason="sender")


def native_cost_wei(tx: SignedTransactionAPI) -> int:
    """What the ETH balance must cover when the transaction pays the Ethereum way."""
    cost = tx.value + tx.gas * tx.max_fee_per_gas
    if tx.type_id == BLOB_TX_TYPE:
        cost += tx.max_fee_per_blob_gas * len(tx.blob_versioned_hashes) * GAS_PER_BLOB
    return cost


def effective_tip(tx: SignedTransactionAPI, base_fee_wei: int) -> int:
    return min(tx.max_priority_fee_per_gas, tx.max_fee_per_gas - base_fee_wei)


def bumped(old: int, new: int, percent: int) -> bool:
    """Whether `new` is at least `percent` % above `old` (integer arithmetic)."""
    return new * 100 >= old * (100 + percent) and new > old

