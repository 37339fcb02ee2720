"""Stateful model test: a real fee-plugin chain against a plain-Python reference model.

Hypothesis drives deposits, operator grants, transfers, reverting calls, freezes, validity
changes, sweeps, time jumps (small, across expiries, huge) and invalid transactions; after
every step the chain must equal the model exactly, in wei. The model is written from the
spec (README "Lots"), independently of fee_plugin.lots.

CI runs the derandomized "ci" profile; `HYPOTHESIS_PROFILE=large MODEL_STEPS=100 pytest
tests/test_model.py` runs the big search by hand (README, "Reliability").
"""
import os
from dataclasses import dataclass, field
from typing import Dict, List

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from fee_plugin import FeeValidationError, fee_account
from fee_plugin.vault import FEE_CHARGED_TOPIC

from .chain_helpers import (
    BASE_FEE,
    COINBASE,
    ETHER,
    GENESIS_TIME,
    GWEI,
    OPERATOR_KEY,
    TREASURY,
    USER_KEYS,
    VAULT,
    address,
    calldata,
    new_chain,
    sign,
)

USERS = USER_KEYS[:3]
SINK = b"\x42" * 20
MIN_DEPOSIT = 10**15
MAX_LIVE = 3
LOW = 10**16
MAX_FEE, TIP = 2 * GWEI, GWEI // 2
PRICE = min(MAX_FEE, BASE_FEE + TIP)
EVERYONE = [address(k) for k in USER_KEYS + (OPERATOR_KEY,)] + [VAULT, TREASURY, COINBASE, SINK]


@dataclass
class ModelLot:
    slot: int
    amount: int
    used: int
    start: int
    expiry: int

    def available(self, t: int) -> int:
        if t >= self.expiry:
            return 0
        released = self.amount * (min(t, self.expiry) - self.start) // (self.expiry - self.start)
        return max(released - self.used, 0)


@dataclass
class ModelAccount:
    opened: bool = False
    frozen: bool = False
    lots: List[ModelLot] = field(default_factory=list)
    deposited: int = 0
    charged: int = 0
    expired: int = 0

    def available(self, t: int) -> int:
        return sum(lot.available(t) for lot in self.lots)

    def status(self, t: int) -> str:
        if not self.opened:
            return "NONE"
        if self.frozen:
            return "FROZEN"
        if all(t >= lot.expiry for lot in self.lots):
            return "EXPIRED"
        available = self.available(t)
        return "EXHAUSTED" if available == 0 else "LOW" if available < LOW else "ACTIVE"

    def add_lot(self, amount: int, t: int, validity: int) -> None:
        used = {lot.slot for lot in self.lots}
        slot = min(set(range(MAX_LIVE)) - used)
        self.lots.append(ModelLot(slot, amount, 0, t, t + validity))
        self.lots.sort(key=lambda lot: lot.slot)
        self.deposited += amount
        self.opened = True

    def sweep(self, t: int) -> int:
        gone = [lot for lot in self.lots if t >= lot.expiry]
        self.lots = [lot for lot in self.lots if t < lot.expiry]
        swept = sum(lot.amount - lot.used for lot in gone)
        self.expired += swept
        return swept

    def charge(self, fee: int, t: int) -> None:
        for lot in sorted(self.lots, key=lambda lot: (lot.expiry, lot.start, lot.slot)):
            take = min(lot.available(t), fee)
            lot.used += take
            fee -= take
        assert fee == 0, "the model was asked to overdraw"


class FeeChainMachine(RuleBasedStateMachine):
    checks = 0  # invariant checks run (one per step), reported by the large run

    def __init__(self):
        super().__init__()
        _, self.chain = new_chain(minDeposit=str(MIN_DEPOSIT), maxLiveLots=MAX_LIVE, lowBalance=str(LOW))
        self.model: Dict[bytes, ModelAccount] = {address(k): ModelAccount() for k in USERS}
        self.validity = 1000
        self.t = GENESIS_TIME
        self.burned = 0
        self.total = sum(self.chain.get_vm().state.get_balance(a) for a in EVERYONE)

    # -- driving the chain ---------------------------------------------------------------

    def _submit(self, key, to, value=0, data=b"", gas=21_000):
        """Apply one transaction in its own block; returns the receipt or the refusal."""
        self.t += 1
        self.chain.set_header_timestamp(self.t)
        tx = sign(self.chain, key, to, value=value, data=data, gas=gas, max_fee=MAX_FEE, tip=TIP)
        root = self.chain.get_vm().state.state_root
        try:
            _, receipt, _ = self.chain.apply_transaction(tx)
        except FeeValidationError as err:
            assert self.chain.get_vm().state.state_root == root
            return err
        self.chain.mine_block()
        return receipt

    def _pays_with_lots(self, key, to, data, gas) -> bool:
        """The model's payment decision (README "Per transaction"); False means native."""
        sender = address(key)
        account = self.model.get(sender, ModelAccount())
        can_pay = account.opened and not account.frozen and account.available(self.t + 1) >= gas * MAX_FEE
        return can_pay

    def _settle(self, key, receipt, lot_paid: bool) -> None:
        """Apply the fee of an included transaction to the model."""
        gas_used = receipt.gas_used
        fee_logs = [log for log in receipt.logs if log.address == VAULT and log.topics[0] == FEE_CHARGED_TOPIC]
        assert bool(fee_logs) == lot_paid, "the chain chose a different payer than the model"
        if lot_paid:
            account = self.model[address(key)]
            account.sweep(self.t)
            fee = gas_used * PRICE
            account.charge(fee, self.t)
            account.charged += fee
        else:
            self.burned += gas_used * BASE_FEE

    def _vault_call(self, key, data, value=0, gas=300_000, effect=None):
        """A vault call; `effect(receipt)` applies the call's own result to the model before
        the fee is settled (on chain the call runs first, then the hook charges)."""
        lot_paid = self._pays_with_lots(key, VAULT, data, gas)
        bootstrap = data[:4] == calldata("deposit")[:4] or key is OPERATOR_KEY
        result = self._submit(key, VAULT, value=value, data=data, gas=gas)
        if not lot_paid and not bootstrap:
            assert isinstance(result, FeeValidationError)
            return None
        assert not isinstance(result, Exception), result
        if effect is not None:
            effect(result)
        self._settle(key, result, lot_paid)
        return result

    # -- rules ------------------------------------------------------------------------

    @initialize()
    def everyone_deposits(self):
        """Start with a funded lot each, part released, so most steps are lot-paid."""
        for who in range(len(USERS)):
            self.deposit(who, ETHER)
        self.t += 200

    @rule(who=st.integers(0, 2), amount=st.one_of(st.integers(MIN_DEPOSIT - 10, 3 * MIN_DEPOSIT), st.integers(ETHER // 10, ETHER)))
    def deposit(self, who, amount):
        key = USERS[who]
        account = self.model[address(key)]
        ok = amount >= MIN_DEPOSIT and len(account.lots) < MAX_LIVE  # expired-unswept lots count

        def effect(receipt):
            assert (receipt.state_root == b"\x01") == ok
            if ok:
                account.add_lot(amount, self.t, self.validity)

        self._vault_call(key, calldata("deposit"), value=amount, effect=effect)

    @rule(who=st.integers(0, 2), validity=st.integers(1, 3000))
    def grant(self, who, validity):
        account = self.model[address(USERS[who])]
        receipt = self._vault_call(OPERATOR_KEY, calldata("grant", address(USERS[who]), validity), value=ETHER // 100)
        ok = len(account.lots) < MAX_LIVE
        assert (receipt.state_root == b"\x01") == ok
        if ok:
            account.add_lot(ETHER // 100, self.t, validity)

    @rule(who=st.integers(0, 2), gas=st.integers(21_000, 200_000))
    def transfer(self, who, gas):
        key = USERS[who]
        lot_paid = self._pays_with_lots(key, SINK, b"", gas)
        result = self._submit(key, SINK, value=1, gas=gas)
        if not lot_paid:
            assert isinstance(result, FeeValidationError), result
            return
        self._settle(key, result, True)

    @rule(who=st.integers(0, 2), gas=st.integers(30_000, 100_000))
    def reverting_call(self, who, gas):
        key = USERS[who]
        lot_paid = self._pays_with_lots(key, VAULT, b"\xff", gas)
        result = self._submit(key, VAULT, data=b"\xff", gas=gas)
        if not lot_paid:
            assert isinstance(result, FeeValidationError), result
            return
        assert result.state_root == b""
        self._settle(key, result, True)

    @rule(who=st.integers(0, 2), freeze=st.booleans())
    def freeze(self, who, freeze):
        account = self.model[address(USERS[who])]
        receipt = self._vault_call(OPERATOR_KEY, calldata("freeze" if freeze else "unfreeze", address(USERS[who])))
        assert (receipt.state_root == b"\x01") == account.opened
        if account.opened:
            account.frozen = freeze

    @rule(validity=st.integers(1, 5000))
    def set_validity(self, validity):
        self._vault_call(OPERATOR_KEY, calldata("setLotValidity", validity))
        self.validity = validity

    @rule(who=st.integers(0, 2))
    def sweep(self, who):
        receipt = self._vault_call(OPERATOR_KEY, calldata("sweepExpired", address(USERS[who])))
        assert receipt.state_root == b"\x01"
        self.model[address(USERS[who])].sweep(self.t)

    @rule(seconds=st.sampled_from([1, 5, 100, 999, 1000, 1001, 4000, 10**6]))
    def wait(self, seconds):
        self.t += seconds

    # -- invariants -------------------------------------------------------------------

    @invariant()
    def chain_equals_model(self):
        FeeChainMachine.checks += 1
        head_t = self.chain.get_canonical_head().timestamp
        remaining = 0
        for key in USERS:
            model, view = self.model[address(key)], fee_account(self.chain, address(key))
            assert view.status.name == model.status(head_t)
            assert view.available_wei == model.available(head_t)
            assert [(l.slot, l.amount_wei, l.used_wei, l.start, l.expiry) for l in view.lots] == [
                (l.slot, l.amount, l.used, l.start, l.expiry) for l in model.lots
            ]
            assert (view.deposited_wei, view.charged_wei, view.expired_wei) == (model.deposited, model.charged, model.expired)
            assert view.deposited_wei == view.charged_wei + view.expired_wei + view.remaining_wei
            remaining += view.remaining_wei
        state = self.chain.get_vm().state
        assert state.get_balance(VAULT) == remaining
        assert sum(state.get_balance(a) for a in EVERYONE) == self.total - self.burned


FeeChainMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("MODEL_EXAMPLES", 20)),
    stateful_step_count=int(os.environ.get("MODEL_STEPS", 25)),
    deadline=None,
)
test_fee_chain_matches_reference_model = FeeChainMachine.TestCase
