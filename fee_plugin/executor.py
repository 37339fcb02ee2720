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
from .payment import FeeValidationError, Payment, choose_payment, max_fee_wei
from .payment import describe as _describe
from .vault import (
    FeeAccount,
    charge_account,
    charge_logs,
    pay_out_fees,
    plan_charge,
    read_account,
)

NONCE_LIMIT = 2**64 - 1
SET_CODE_TX_TYPE = 4  # EIP-7702: authorizations change code before the call
PRECOMPILE_LIMIT = 0x100  # addresses at or below may run precompiles, present or future
FEE_LOGS_ATTRIBUTE = "fee_plugin_logs"


class FeeExecutorMixin:
    """Mix in before the fork's TransactionExecutor; `fee_config` is set per genesis."""

    fee_config: FeeConfig = None

    _payment: Optional[Payment] = None
    _account: Optional[FeeAccount] = None  # as read during validation
    _runs_code = True  # False when the message executes no EVM code at all
    _cached = False  # charged through the state's write-back cache

    # -- validation -----------------------------------------------------------------

    def validate_transaction(self, transaction: SignedTransactionAPI) -> None:
        cache = self.vm_state.fee_cache
        if cache is not None and cache.dirty and transaction.sender in self._special():
            # Validation reads the sender's balance, which may have cached credits.
            self.vm_state.fee_flush()
        self._validate_and_choose_payment(transaction)
        if cache is not None:
            self._cached = self._cacheable(transaction)
            if not self._cached:
                # Anything the transaction runs or touches sees every earlier charge
                # stored and locked (SSTORE gas reads "original" values), as in the
                # per-transaction design. The records stay cached as clean entries until
                # the transaction has shown whether the vault's code ran (finalize).
                self.vm_state.fee_flush(keep=True)
                self.vm_state.lock_changes()

    def _validate_and_choose_payment(self, transaction: SignedTransactionAPI) -> None:
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

    def _cacheable(self, tx: SignedTransactionAPI) -> bool:
        """A lot-paid transaction that runs no EVM code and moves no ETH of the vault,
        the treasury or the coinbase: nothing in it can observe a cached charge."""
        if self._payment is not Payment.LOTS or tx.type_id == SET_CODE_TX_TYPE:
            return False
        if tx.to == CREATE_CONTRACT_ADDRESS or int.from_bytes(tx.to, "big") <= PRECOMPILE_LIMIT:
            return False
        special = self._special()
        if tx.to in special or tx.sender in special:
            return False
        return not self.vm_state.get_code(tx.to)

    def _special(self) -> Tuple[bytes, bytes, bytes]:
        """Accounts whose balance or storage the write-back cache holds back."""
        cfg = self.fee_config
        return cfg.vault, cfg.treasury, self.vm_state.coinbase

    def _read_account(self, owner) -> FeeAccount:
        cache = self.vm_state.fee_cache
        if cache is None:
            return read_account(self.vm_state, self.fee_config.vault, owner)
        account = cache.get(owner)
        if account is None:
            account = read_account(self.vm_state, self.fee_config.vault, owner)
            cache.load(owner, account)
        return account

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
        account = self._read_account(tx.sender)
        t = self.vm_state.execution_context.timestamp
        payment = choose_payment(self.fee_config, tx, account, t, self._max_fee_wei(tx))
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
        assert 0 <= tip_wei <= fee_wei, (tip_wei, fee_wei)
        return billed_gas, fee_wei, tip_wei

    def finalize_computation(
        self, transaction: SignedTransactionAPI, computation: ComputationAPI
    ) -> ComputationAPI:
        cache = self.vm_state.fee_cache
        if cache is not None and not self._cached and self._vault_code_ran(computation):
            cache.forget_all()  # the vault's code may have changed any owner's records
        if self._payment is Payment.NATIVE:
            return super().finalize_computation(transaction, computation)
        return self._charge_lots(transaction, computation)

    def _vault_code_ran(self, computation: ComputationAPI) -> bool:
        """Whether any frame ran the vault's code or wrote its storage (reverted frames
        too: conservative). Only then can EVM code have changed fee records."""
        vault = self.fee_config.vault
        frames = [computation]
        while frames:
            frame = frames.pop()
            if vault in (frame.msg.storage_address, frame.msg.code_address):
                return True
            frames.extend(frame.children)
        return False

    def _charge_lots(
        self, transaction: SignedTransactionAPI, computation: ComputationAPI
    ) -> ComputationAPI:
        state = self.vm_state
        cfg = self.fee_config
        billed_gas, fee_wei, tip_wei = self.billing(transaction, computation)

        t = state.execution_context.timestamp
        cache = state.fee_cache
        if self._cached:
            # No code ran: the account read during validation is still exact.
            charge, after = plan_charge(
                self._account, fee_wei, t, cfg.release_policy, cfg.low_balance_wei
            )
        else:
            # Only EVM code can write vault storage: after a plain transfer the account
            # read during validation is still exact, otherwise read it again.
            if self._runs_code:
                account = read_account(state, cfg.vault, transaction.sender)
            else:
                account = self._account
            charge, after = charge_account(
                state, cfg.vault, account, fee_wei, t, cfg.release_policy, cfg.low_balance_wei
            )
            if cache is not None:  # the clean cache entry follows the stored record
                cache.replace(transaction.sender, after)
        vault_out_wei = fee_wei + charge.swept_wei
        treasury_in_wei = vault_out_wei - tip_wei
        if self._cached:
            assert state.get_balance(cfg.vault) - cache.vault_out_wei >= vault_out_wei
            cache.charge(after, vault_out_wei, treasury_in_wei, tip_wei)
        else:
            pay_out_fees(
                state, cfg.vault, cfg.treasury, state.coinbase,
                vault_out_wei, treasury_in_wei, tip_wei,
            )
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
