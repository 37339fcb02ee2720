"""The transaction executor hook: fees paid from prepaid lots instead of the ETH balance.

A mixin over the fork's TransactionExecutor (see vm.py). Per transaction it decides who pays
(`Payment`), validates everything stock py-evm would (and what it misses), runs the EVM
unchanged, then charges the lots and moves the fee out of the vault — all inside the
transaction's own state transition, through the journaled state API.
"""
from typing import Optional, Tuple

from eth._utils.address import generate_contract_address
from eth._utils.state import code_is_delegation_designation
from eth.abc import ComputationAPI, MessageAPI, SignedTransactionAPI
from eth.constants import CREATE_CONTRACT_ADDRESS, SECPK1_N
from eth.vm.forks.shanghai.constants import MAX_INITCODE_SIZE
from eth.vm.forks.spurious_dragon._utils import collect_touched_accounts
from eth.vm.message import Message

from .genesis import FeeConfig
from .lots import require
from .payment import FeeValidationError, Payment, choose_payment, max_fee_wei
from .payment import describe as _describe
from .vault import (
    FeeAccount,
    charge_logs,
    load_account,
    pay_out_fees,
    plan_charge,
    reader,
    write_account,
)

NONCE_LIMIT = 2**64 - 1
FEE_LOGS_ATTRIBUTE = "fee_plugin_logs"


class FeeExecutorMixin:
    """Mix in before the fork's TransactionExecutor; `fee_config` is set per genesis.

    The per-transaction design: every charge is stored at once. Two seams,
    `load_account` and `settle_charge`, are where the write-back design
    (writeback.WriteBackExecutorMixin) keeps records for the block instead."""

    fee_config: FeeConfig = None

    _payment: Optional[Payment] = None
    _account: Optional[FeeAccount] = None  # as read during validation
    _runs_code = True  # False when the message executes no EVM code at all

    # -- validation -----------------------------------------------------------------

    def validate_transaction(self, transaction: SignedTransactionAPI) -> None:
        if self._max_fee_wei(transaction) == 0:
            # eth_call / estimate style (gas price 0): nothing paid, nothing charged.
            self._payment = Payment.NATIVE
            return super().validate_transaction(transaction)
        self._validate_common(transaction)
        self._payment, self._account = self._choose_payment(transaction)
        if self._payment is Payment.NATIVE:
            super().validate_transaction(transaction)
        else:
            self._validate_lot_paid(transaction)

    # -- the two seams ----------------------------------------------------------------

    def load_account(self, owner) -> FeeAccount:
        """The owner's record for this transaction."""
        return self.read_stored_account(owner)

    def settle_charge(
        self, after: FeeAccount, vault_out_wei: int, treasury_in_wei: int, tip_wei: int
    ) -> FeeAccount:
        """Store the charged record and move the fee out of the vault, now; returns the
        record as stored."""
        state, cfg = self.vm_state, self.fee_config
        stored = write_account(state, cfg.vault, after)
        pay_out_fees(state, cfg.vault, cfg.treasury, state.coinbase,
                     vault_out_wei, treasury_in_wei, tip_wei)
        return stored

    def read_stored_account(self, owner) -> FeeAccount:
        """The record as the state holds it, read up to the block time's front."""
        state = self.vm_state
        return load_account(state, self.fee_config.vault, owner, state.execution_context.timestamp)

    def account_after_execution(self, transaction: SignedTransactionAPI) -> FeeAccount:
        """Only EVM code can write vault storage: after a plain transfer the record read
        during validation is still exact, otherwise it is read again."""
        if self._runs_code:
            return self.read_stored_account(transaction.sender)
        return self._account

    def _validate_common(self, tx: SignedTransactionAPI) -> None:
        """Checks stock py-evm skips for some transaction types (internals notes)."""
        state = self.vm_state
        chain_id = state.execution_context.chain_id
        if tx.chain_id is not None and tx.chain_id != chain_id:
            raise FeeValidationError(
                f"{_describe(tx)}: chain id {tx.chain_id} != this chain's {chain_id}"
            )
        if tx.gas < tx.intrinsic_gas:
            raise FeeValidationError(
                f"{_describe(tx)}: gas limit {tx.gas} < intrinsic gas {tx.intrinsic_gas}"
            )
        floor_gas = self.calc_data_floor_gas(tx, 0, 0)  # EIP-7623; 0 before Prague
        if tx.gas < floor_gas:
            raise FeeValidationError(
                f"{_describe(tx)}: gas limit {tx.gas} < calldata floor gas {floor_gas}"
            )
        if tx.to == CREATE_CONTRACT_ADDRESS and len(tx.data) > MAX_INITCODE_SIZE:
            raise FeeValidationError(
                f"{_describe(tx)}: init code {len(tx.data)} bytes > {MAX_INITCODE_SIZE}"
            )
        if tx.s == 0 or tx.s > SECPK1_N // 2:
            raise FeeValidationError(f"{_describe(tx)}: invalid signature s value")
        if tx.max_priority_fee_per_gas > tx.max_fee_per_gas:
            raise FeeValidationError(
                f"{_describe(tx)}: max priority fee {tx.max_priority_fee_per_gas} > "
                f"max fee {tx.max_fee_per_gas}"
            )
        base_fee = state.execution_context.base_fee_per_gas
        if tx.max_fee_per_gas < base_fee:
            raise FeeValidationError(
                f"{_describe(tx)}: max fee per gas {tx.max_fee_per_gas} < "
                f"block base fee {base_fee}"
            )
        nonce = state.get_nonce(tx.sender)
        if tx.nonce != nonce:
            raise FeeValidationError(f"{_describe(tx)}: nonce {tx.nonce}, expected {nonce}")
        if nonce >= NONCE_LIMIT:
            raise FeeValidationError(f"{_describe(tx)}: sender nonce at its limit")
        code = state.get_code(tx.sender)
        if code and not code_is_delegation_designation(code):
            raise FeeValidationError(f"{_describe(tx)}: sender has code (EIP-3607)")

    def _choose_payment(
        self, tx: SignedTransactionAPI
    ) -> Tuple[Payment, Optional[FeeAccount]]:
        account = self.load_account(tx.sender)
        state = self.vm_state
        t = state.execution_context.timestamp
        read = reader(state, self.fee_config.vault, tx.sender)
        payment = choose_payment(self.fee_config, tx, account, t, self._max_fee_wei(tx), read)
        return payment, (account if payment is Payment.LOTS else None)

    def _max_fee_wei(self, tx: SignedTransactionAPI) -> int:
        # Legacy transactions expose gas_price as max_fee_per_gas; a zero gas price in the
        # state (costless execution) means nothing is paid.
        if self.vm_state.get_gas_price(tx) == 0:
            return 0
        return max_fee_wei(tx)

    def _validate_lot_paid(self, tx: SignedTransactionAPI) -> None:
        tx.validate()
        balance = self.vm_state.get_balance(tx.sender)
        if balance < tx.value:
            raise FeeValidationError(
                f"{_describe(tx)}: value {tx.value} wei > ETH balance {balance} wei "
                "(gas is paid from fee lots; the balance only has to cover value)"
            )

    # -- message: everything stock does except buying gas --------------------------

    def build_evm_message(self, transaction: SignedTransactionAPI) -> MessageAPI:
        if self._payment is Payment.NATIVE:
            return super().build_evm_message(transaction)
        state = self.vm_state
        state.increment_nonce(transaction.sender)
        refund = self.calc_message_refund(transaction)
        if transaction.to == CREATE_CONTRACT_ADDRESS:
            create_address = generate_contract_address(
                transaction.sender, state.get_nonce(transaction.sender) - 1
            )
            data, code, is_delegation = b"", transaction.data, False
        else:
            create_address = None
            data = transaction.data
            code, delegation_address = self.get_code_at_address(transaction.to)
            is_delegation = delegation_address is not None
        self._runs_code = bool(code)
        return Message(
            gas=transaction.gas - transaction.intrinsic_gas,
            to=transaction.to,
            sender=transaction.sender,
            value=transaction.value,
            data=data,
            code=code,
            create_address=create_address,
            refund=refund,
            is_delegation=is_delegation,
        )

    # -- after execution: charge the lots -----------------------------------------

    def billing(
        self, transaction: SignedTransactionAPI, computation: ComputationAPI
    ) -> Tuple[int, int, int]:
        """(billed gas, fee wei, tip wei) as stock py-evm would take them: refund capped,
        EIP-7623 floor applied (sets `computation.data_floor_gas` like stock does)."""
        state = self.vm_state
        gas_remaining = computation.get_gas_remaining()
        gas_refund = self.calculate_gas_refund(computation, transaction.gas - gas_remaining)
        computation.data_floor_gas = self.calc_data_floor_gas(
            transaction, transaction.gas - gas_remaining, gas_refund
        )
        billed_gas = (
            transaction.gas - gas_remaining - gas_refund + computation.data_floor_gas
        )
        fee_wei = billed_gas * state.get_gas_price(transaction)
        tip_wei = billed_gas * state.get_tip(transaction)
        require(0 <= tip_wei <= fee_wei, (tip_wei, fee_wei))
        return billed_gas, fee_wei, tip_wei

    def finalize_computation(
        self, transaction: SignedTransactionAPI, computation: ComputationAPI
    ) -> ComputationAPI:
        if self._payment is Payment.NATIVE:
            return super().finalize_computation(transaction, computation)
        return self._charge_lots(transaction, computation)

    def _charge_lots(
        self, transaction: SignedTransactionAPI, computation: ComputationAPI
    ) -> ComputationAPI:
        state = self.vm_state
        cfg = self.fee_config
        billed_gas, fee_wei, tip_wei = self.billing(transaction, computation)
        account = self.account_after_execution(transaction)
        charge, after = plan_charge(
            account, fee_wei, state.execution_context.timestamp, cfg.release_policy,
            cfg.low_balance_wei, reader(state, cfg.vault, transaction.sender),
        )
        vault_out_wei = fee_wei + charge.swept_wei
        self.settle_charge(after, vault_out_wei, vault_out_wei - tip_wei, tip_wei)
        setattr(
            computation,
            FEE_LOGS_ATTRIBUTE,
            charge_logs(cfg.vault, transaction.sender, charge, billed_gas),
        )
        self.delete_dead_accounts(computation)
        return computation

    def delete_dead_accounts(self, computation: ComputationAPI) -> None:
        """Self-destructed accounts, and touched ones left empty (EIP-161), as the stock
        finalize_computation deletes them after its gas settlement."""
        state = self.vm_state
        for address in computation.get_accounts_for_deletion():
            state.delete_account(address)
        for address in collect_touched_accounts(computation):
            if state.account_exists(address) and state.account_is_empty(address):
                state.delete_account(address)
