"""Stateful model test: a real fee-plugin chain against a plain-Python reference model.

Hypothesis drives deposits, operator grants, transfers, reverting calls, freezes, validity
changes, sweeps, time jumps (small, across expiries, huge) and invalid transactions; after
every step the chain must equal the model exactly, in wei. The model is written from the
spec (README "Lots"), independently of fee_plugin.lots.

CI runs the derandomized "ci" profile; `HYPOTHESIS_PROFILE=large MODEL_STEPS=100 pytest
tests/test_model.py` runs the big search by hand (README, "Reliability").
"""
import copy
import os
from dataclasses import dataclass, field
from typing import Dict, List

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from fee_plugin import FeeValidationError, fee_account
from fee_plugin.vault import FEE_CHARGED_TOPIC

from .support.chain import (
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
    upfront: bool
    bps: int

    def released(self, t: int) -> int:
        """Spec: all at the start when upfront; uniform: R0 = A·bps // 10000, rate
        r = (A − R0) // (e − s) per second, the rest (R0 and the rounding) at the start."""
        if self.upfront:
            return self.amount
        span = self.expiry - self.start
        rate = (self.amount - self.amount * self.bps // 10_000) // span
        return self.amount - rate * span + rate * (min(t, self.expiry) - self.start)

    def available(self, t: int) -> int:
        if t >= self.expiry:
            return 0
        return max(self.released(t) - self.used, 0)


@dataclass
class ModelAccount:
    """Lots in two lists, as the spec orders them: `lots` may still pay, in charge order
    (expiry, then deposit order); `spent` holds used-up lots until the vault's next own
    update after their expiry, newest first."""

    opened: bool = False
    frozen: bool = False
    lots: List[ModelLot] = field(default_factory=list)
    spent: List[ModelLot] = field(default_factory=list)
    deposited: int = 0
    charged: int = 0
    expired: int = 0
    recorded: str = "NONE"  # status as of the last update

    def stored(self) -> List[ModelLot]:
        return self.lots + self.spent

    def available(self, t: int) -> int:
        return sum(lot.available(t) for lot in self.lots)

    def status(self, t: int) -> str:
        if not self.opened:
            return "NONE"
        if self.frozen:
            return "FROZEN"
        if all(t >= lot.expiry for lot in self.stored()):
            return "EXPIRED"
        available = self.available(t)
        return "EXHAUSTED" if available == 0 else "LOW" if available < LOW else "ACTIVE"

    def _sweep_front(self, t: int) -> int:
        swept = 0
        while self.lots and t >= self.lots[0].expiry:
            lot = self.lots.pop(0)
            swept += lot.amount - lot.used
        self.expired += swept
        return swept

    def _retire_front(self) -> None:
        while self.lots and self.lots[0].used == self.lots[0].amount:
            self.spent.insert(0, self.lots.pop(0))

    def settle(self, t: int) -> bool:
        """What every vault function that updates the account does first; True if any
        lot moved (sweepExpired updates the account only then)."""
        before = (len(self.lots), len(self.spent))
        self._sweep_front(t)
        self._retire_front()
        self.spent = [lot for lot in self.spent if t < lot.expiry]
        return (len(self.lots), len(self.spent)) != before

    def add_lot(self, amount: int, t: int, validity: int, upfront: bool, bps: int) -> None:
        taken = {lot.slot for lot in self.stored()}
        lot = ModelLot(min(set(range(MAX_LIVE)) - taken), amount, 0, t, t + validity, upfront, bps)
        position = sum(1 for other in self.lots if other.expiry <= lot.expiry)
        self.lots.insert(position, lot)
        self.deposited += amount
        self.opened = True

    def charge(self, fee: int, t: int) -> int:
        """A fee charge; returns wei swept."""
        swept = self._sweep_front(t)
        self.charged += fee
        for lot in self.lots:
            take = min(lot.available(t), fee)
            lot.used += take
            fee -= take
        assert fee == 0, "the model was asked to overdraw"
        self._retire_front()
        self.recorded = self.status(t)
        return swept


class FeeChainMachine(RuleBasedStateMachine):
    checks = 0  # invariant checks run (one per step), reported by the large run
    consumption, bps = "uniform", 0
    first_deposits = (ETHER,)

    def __init__(self):
        super().__init__()
        _, self.chain = new_chain(minDeposit=str(MIN_DEPOSIT), maxLiveLots=MAX_LIVE, lowBalance=str(LOW),
                                  consumption=self.consumption, initialReleaseBps=self.bps)
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
            account.charge(gas_used * PRICE, self.t)
            available_after = int.from_bytes(fee_logs[0].data[64:96], "big")
            assert available_after == account.available(self.t), "FeeCharged availableAfter"
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
            for amount in self.first_deposits:
                self.deposit(who, amount)
        self.t += 200

    def _add(self, account: ModelAccount, amount: int, validity: int):
        """The model's deposit or grant, applied at the call's block time: a refused one
        changes nothing, its settlement included (the whole call reverts)."""

        def effect(receipt):
            trial = copy.deepcopy(account)
            trial.settle(self.t)
            ok = amount >= MIN_DEPOSIT and len(trial.stored()) < MAX_LIVE
            assert (receipt.state_root == b"\x01") == ok
            if ok:
                account.settle(self.t)
                account.add_lot(amount, self.t, validity, self.consumption == "upfront", self.bps)
                account.recorded = account.status(self.t)

        return effect

    @rule(who=st.integers(0, 2), amount=st.one_of(st.integers(MIN_DEPOSIT - 10, 3 * MIN_DEPOSIT), st.integers(ETHER // 10, ETHER)))
    def deposit(self, who, amount):
        key = USERS[who]
        effect = self._add(self.model[address(key)], amount, self.validity)
        self._vault_call(key, calldata("deposit"), value=amount, effect=effect)

    @rule(who=st.integers(0, 2), validity=st.integers(1, 3000))
    def grant(self, who, validity):
        effect = self._add(self.model[address(USERS[who])], ETHER // 100, validity)
        self._vault_call(OPERATOR_KEY, calldata("grant", address(USERS[who]), validity), value=ETHER // 100,
                         effect=effect)

    @rule(who=st.integers(0, 2), gas=st.integers(21_000, 200_000))
    def transfer(self, who, gas):
        key = USERS[who]
        lot_paid = self._pays_with_lots(key, SINK, b"", gas)
        result = self._submit(key, SINK, value=1, gas=gas)
        if not lot_paid:
            assert isinstance(result, FeeValidationError), result
            return
        self._settle(key, result, True)

    @rule(who=st.integers(0, 2), size=st.sampled_from([1_000, 10_000, 30_000]))
    def heavy_transfer(self, who, size):
        """Calldata-heavy (EIP-7623 floor: 40 gas a non-zero byte): fees that use up lots."""
        key = USERS[who]
        gas = 21_000 + 40 * size
        lot_paid = self._pays_with_lots(key, SINK, b"", gas)
        result = self._submit(key, SINK, value=1, data=b"\x01" * size, gas=gas)
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
            account.settle(self.t)
            account.frozen = freeze
            account.recorded = account.status(self.t)

    @rule(validity=st.integers(1, 5000))
    def set_validity(self, validity):
        self._vault_call(OPERATOR_KEY, calldata("setLotValidity", validity))
        self.validity = validity

    @rule(who=st.integers(0, 2))
    def sweep(self, who):
        receipt = self._vault_call(OPERATOR_KEY, calldata("sweepExpired", address(USERS[who])))
        assert receipt.state_root == b"\x01"
        account = self.model[address(USERS[who])]
        if account.opened and account.settle(self.t):
            account.recorded = account.status(self.t)

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
            assert view.recorded_status.name == model.recorded
            assert [(l.slot, l.amount_wei, l.used_wei, l.start, l.expiry) for l in view.lots] == [
                (l.slot, l.amount, l.used, l.start, l.expiry) for l in model.stored()
            ]
            assert (view.deposited_wei, view.charged_wei, view.expired_wei) == (model.deposited, model.charged, model.expired)
            assert view.deposited_wei == view.charged_wei + view.expired_wei + view.remaining_wei
            remaining += view.remaining_wei
        state = self.chain.get_vm().state
        assert state.get_balance(VAULT) == remaining
        assert sum(state.get_balance(a) for a in EVERYONE) == self.total - self.burned


class UpfrontChainMachine(FeeChainMachine):
    """Upfront lots are used up in turn: the spent chain and its clean-up get exercised."""

    consumption = "upfront"
    first_deposits = (MIN_DEPOSIT, 2 * MIN_DEPOSIT)  # a fee can span two lots from the start

    @rule(who=st.integers(0, 2))
    def use_up(self, who):
        """A fee of ~1.8e15 wei: more than a small lot holds, so it draws the next one too."""
        self.heavy_transfer(who, 30_000)


class InitialReleaseChainMachine(FeeChainMachine):
    consumption, bps = "uniform", 1000


MODEL_SETTINGS = settings(
    max_examples=int(os.environ.get("MODEL_EXAMPLES", 20)),
    stateful_step_count=int(os.environ.get("MODEL_STEPS", 25)),
    deadline=None,
)
for _machine in (FeeChainMachine, UpfrontChainMachine, InitialReleaseChainMachine):
    _machine.TestCase.settings = MODEL_SETTINGS
test_fee_chain_matches_reference_model = FeeChainMachine.TestCase
# The variants run in CI and the large run; the fast loop keeps the base machine.
test_upfront_chain_matches_reference_model = pytest.mark.slow(UpfrontChainMachine.TestCase)
test_initial_release_chain_matches_reference_model = pytest.mark.slow(InitialReleaseChainMachine.TestCase)
