"""Fee-plugin fork classes: py-evm's Cancun/Prague with the fee executor and header rules.

Follows py-evm's own fork pattern: each class subclasses the stock fork and overrides only
the hooks that change (executor, receipt logs, header gas/base-fee rules).
"""
from functools import lru_cache
from typing import Any, Dict, Optional, Type

from eth.abc import (
    BlockHeaderAPI,
    ComputationAPI,
    ReceiptAPI,
    SignedTransactionAPI,
    StateAPI,
    VirtualMachineAPI,
)
from eth.vm.forks.byzantium.constants import (
    EIP658_TRANSACTION_STATUS_CODE_FAILURE,
    EIP658_TRANSACTION_STATUS_CODE_SUCCESS,
)
from eth.vm.forks.cancun import CancunVM
from eth.vm.forks.prague import PragueVM
from eth_utils import ValidationError

from .block_copies import HeaderUpdatesMixin, shared_fields_block_class
from .block_tries import BlockTriesMixin
from .executor import FEE_LOGS_ATTRIBUTE, FeeExecutorMixin
from .genesis import Genesis
from .receipts import make_receipt, validate_receipt_bloom
from .state import FeeStateMixin
from .writeback import WriteBackExecutorMixin, WriteBackStateMixin

FORKS: Dict[str, Type[VirtualMachineAPI]] = {"cancun": CancunVM, "prague": PragueVM}


class FeeVMMixin:
    """Adds the hook's logs to receipts and applies the genesis header rules."""

    fixed_gas_limit: Optional[int] = None  # set for headerRules "fixed"
    fixed_base_fee_per_gas: Optional[int] = None

    @classmethod
    def make_receipt(
        cls,
        base_header: BlockHeaderAPI,
        transaction: SignedTransactionAPI,
        computation: ComputationAPI,
        state: StateAPI,
    ) -> ReceiptAPI:
        fee_logs = getattr(computation, FEE_LOGS_ATTRIBUTE, ())
        if not fee_logs:
            return super().make_receipt(base_header, transaction, computation, state)
        # Kept beside the computation: a reverted computation drops its own logs, but a
        # reverted transaction still pays and its charge must be in the receipt. Built
        # once here (the receipt's bloom costs keccaks), with Byzantium's status rule.
        status = (
            EIP658_TRANSACTION_STATUS_CODE_FAILURE
            if computation.is_error
            else EIP658_TRANSACTION_STATUS_CODE_SUCCESS
        )
        gas_used = base_header.gas_used + cls.finalize_gas_used(transaction, computation)
        return make_receipt(
            transaction, status, gas_used, tuple(computation.get_log_entries()) + fee_logs
        )

    @classmethod
    def validate_receipt(cls, receipt: ReceiptAPI) -> None:
        validate_receipt_bloom(receipt)

    # Block-level work after the transactions may read or run anything: store the
    # write-back cache's charges first (no-op for the per-transaction design).
    def apply_all_withdrawals(self, withdrawals) -> None:
        self.state.fee_flush()
        super().apply_all_withdrawals(withdrawals)

    def block_postprocessing(self, block):
        self.state.fee_flush()
        return super().block_postprocessing(block)

    @classmethod
    def finalize_gas_used(cls, transaction: SignedTransactionAPI, computation: ComputationAPI) -> int:
        """Receipt gas equal to the gas the executor bills (stock py-evm caps the refund
        against gas used *plus* the EIP-7623 floor, so the two can differ in Prague)."""
        gas_used = transaction.gas - computation.get_gas_remaining()
        refund = cls.calculate_net_gas_refund(gas_used, computation.get_gas_refund())
        return gas_used - refund + computation.data_floor_gas

    @classmethod
    def validate_gas(cls, header: BlockHeaderAPI, parent_header: BlockHeaderAPI) -> None:
        if cls.fixed_gas_limit is None:
            return super().validate_gas(header, parent_header)
        if header.gas_limit != cls.fixed_gas_limit:
            raise ValidationError(
                f"block {header.block_number}: gas limit {header.gas_limit} != "
                f"the chain's fixed {cls.fixed_gas_limit}"
            )
        if header.base_fee_per_gas != cls.fixed_base_fee_per_gas:
            raise ValidationError(
                f"block {header.block_number}: base fee {header.base_fee_per_gas} != "
                f"the chain's fixed {cls.fixed_base_fee_per_gas}"
            )


def _header_factory(stock_factory, fixed_gas_limit: Optional[int], fixed_base_fee: Optional[int]):
    def create_header_from_parent(
        parent_header: Optional[BlockHeaderAPI], **header_params: Any
    ) -> BlockHeaderAPI:
        if parent_header is not None:
            # No wall clock: the producer sets real timestamps explicitly. The fee
            # recipient stays the producer's unless it says otherwise.
            header_params.setdefault("timestamp", parent_header.timestamp + 1)
            header_params.setdefault("coinbase", parent_header.coinbase)
        if fixed_gas_limit is None or parent_header is None:
            return stock_factory(parent_header, **header_params)
        header_params.pop("base_fee_per_gas", None)
        header_params["gas_limit"] = fixed_gas_limit
        header = stock_factory(parent_header, **header_params)
        return header.copy(base_fee_per_gas=fixed_base_fee)

    return staticmethod(create_header_from_parent)


@lru_cache(maxsize=None)
def _fee_vm_class(genesis: Genesis, fork: str, write_back: bool) -> Type[VirtualMachineAPI]:
    stock_vm = FORKS[fork]
    stock_state = stock_vm.get_state_class()
    name = f"Fee{fork.capitalize()}{'WriteBack' if write_back else ''}"
    # The write-back design is mixed in, py-evm style, not switched on by a flag.
    executor_mixins = (WriteBackExecutorMixin, FeeExecutorMixin) if write_back else (FeeExecutorMixin,)
    state_mixins = (WriteBackStateMixin, FeeStateMixin) if write_back else (FeeStateMixin,)
    executor = type(
        f"{name}TransactionExecutor",
        executor_mixins + (stock_state.transaction_executor_class,),
        {"fee_config": genesis.fee},
    )
    state = type(
        f"{name}State",
        state_mixins + (stock_state,),
        {"transaction_executor_class": executor, "fee_config": genesis.fee},
    )
    fixed = genesis.header_rules == "fixed"
    gas_limit = genesis.gas_limit if fixed else None
    base_fee = genesis.base_fee_per_gas if fixed else None
    return type(
        f"{name}VM",
        (FeeVMMixin, HeaderUpdatesMixin, BlockTriesMixin, stock_vm),
        {
            "block_class": shared_fields_block_class(stock_vm.block_class),
            "_state_class": state,
            "fixed_gas_limit": gas_limit,
            "fixed_base_fee_per_gas": base_fee,
            "create_header_from_parent": _header_factory(
                stock_vm.create_header_from_parent, gas_limit, base_fee
            ),
            "fee_genesis": genesis,
        },
    )


def fee_vm_class(
    genesis: Genesis, fork: Optional[str] = None, write_back: bool = False
) -> Type[VirtualMachineAPI]:
    """The fee VM class for a genesis (fork defaults to the genesis's own).

    `write_back` selects the per-block write-back cache for fee records (writeback.py)
    instead of storing each charge at once; both designs produce identical blocks.
    """
    fork = (fork or genesis.fork).lower()
    if fork not in FORKS:
        raise ValueError(f"unknown fork {fork!r}; supported: {', '.join(sorted(FORKS))}")
    return _fee_vm_class(genesis, fork, bool(write_back))
