"""Benchmark 3 — in-EVM alternative: the same charge done by EVM code vs the native hook.

The in-EVM variant (benchmarks only) keeps the plugin's validation but, after each
lot-paid transaction, calls `PaymasterVault.charge(payer, fee, tip, gasUsed)` as a system
message (sender 0xff..fe, like Prague's system calls; the way an ERC-4337 paymaster's
postOp settles a user operation). PaymasterVault (contracts/PaymasterVault.vy, compiled
at run time) walks the same storage layout v3 (contracts/LAYOUT.md) as the native charge
(fee_plugin/vault.py `plan_charge`): it sweeps the charge chain's expired front (head1 only
when a sweep adds to `expired`), draws the fee from the front on (updating each drawn lot's
`used`), moves used-up front lots to the spent chain and re-anchors the release line in
head0 with the status as of now; it emits the same LotExpired/LotCharged/FeeCharged/
StatusChanged logs and pays the coinbase and the treasury out of the vault. Both chains
start from the same prefunded lot words (native: FeeVault code; in-EVM: PaymasterVault
code); before timing, the benchmark checks that both leave identical vault storage,
accounts, balances, receipts and logs.

Reported per round (medians over rounds), in-EVM / native:
- charge: the whole `finalize_computation` (refund math + charge + cleanup, the same
  common part on both sides, so this ratio understates the charge-only ratio);
- charge call only: the system call (calldata, message, EVM, logs) vs the native lot
  charge pieces (fee_plugin.executor's `load_account` in finalize, `plan_charge`,
  `write_account`, `charge_logs`; the native vault/treasury/coinbase balance moves,
  `pay_out_fees`, are not in this figure, they are in the first);
- whole transaction (apply + state root), and gas of the charge call.

    python benchmarks/bench_inevm.py [--rounds 7]
"""
import statistics
import time

import fee_plugin.executor
from eth.constants import SYSTEM_ADDRESS, SYSTEM_MESSAGE_GAS
from eth.vm.forks import PragueVM
from eth.vm.message import Message

from bench_common import (
    VAULT,
    TREASURY,
    compile_contract,
    script_main,
    make_genesis,
    plain_chain,
    plain_chain_class,
    plugin_chain,
    open_chain,
    ratios,
    sender_keys,
    side_by_side,
    summary,
    transfers,
    uniform_lots,
)
from fee_plugin import fee_vm_class
from fee_plugin.executor import FEE_LOGS_ATTRIBUTE, Payment
from fee_plugin.vault import load_account
from instrument import EXECUTOR_PHASES, Timers, activate, instrumented_vm, timed_functions
import instrument


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


class InEvmChargeMixin:
    """Executor mixin (before the fee executor): charge through PaymasterVault.charge."""

    charge_gas = []  # gas used by every system charge call (read by the benchmark)

    def finalize_computation(self, transaction, computation):
        if self._payment is Payment.NATIVE:
            return super().finalize_computation(transaction, computation)
        state = self.vm_state
        cfg = self.fee_config
        # Fee and tip exactly as FeeExecutorMixin.finalize_computation computes them.
        billed_gas, fee_wei, tip_wei = self.billing(transaction, computation)

        start = time.perf_counter()
        data = charge_calldata(transaction.sender, fee_wei, tip_wei, billed_gas)
        message = Message(
            gas=SYSTEM_MESSAGE_GAS, to=cfg.vault, sender=SYSTEM_ADDRESS, value=0, data=data,
            code=state.get_code(cfg.vault), code_address=cfg.vault,
        )
        context = state.get_transaction_context_class()(gas_price=0, origin=SYSTEM_ADDRESS)
        charge = state.computation_class.apply_message(state, message, context)
        if charge.is_error:
            raise charge.error
        setattr(computation, FEE_LOGS_ATTRIBUTE, tuple(charge.get_log_entries()))
        instrument.ACTIVE.add("system_charge_call", time.perf_counter() - start)
        InEvmChargeMixin.charge_gas.append(SYSTEM_MESSAGE_GAS - charge.get_gas_remaining())
        self.delete_dead_accounts(computation)
        return computation


CHARGE_SELECTOR = b""


def charge_calldata(payer: bytes, fee_wei: int, tip_wei: int, gas_used: int) -> bytes:
    """charge(payer, fee, tip, gasUsed), encoded by hand (static words, no eth-abi)."""
    return (CHARGE_SELECTOR + payer.rjust(32, b"\x00") + _word(fee_wei) + _word(tip_wei)
            + _word(gas_used))


def chains(genesis, lots, plain_too=True):
    """(native, in-EVM, plain) chains with the same prefunded lots, instrumented."""
    global CHARGE_SELECTOR
    paymaster = compile_contract("PaymasterVault")
    CHARGE_SELECTOR = paymaster["selectors"]["charge(address,uint256,uint256,uint256)"]
    native_vm = instrumented_vm(fee_vm_class(genesis), EXECUTOR_PHASES)
    inevm_vm = instrumented_vm(fee_vm_class(genesis), EXECUTOR_PHASES, executor_mixin=InEvmChargeMixin)
    native = plugin_chain(genesis, lots, vm_class=native_vm)
    inevm = plugin_chain(genesis, lots, vault_code=paymaster["runtime"], vm_class=inevm_vm)
    plain = None
    if plain_too:
        plain = open_chain(plain_chain(genesis), plain_chain_class(genesis, instrumented_vm(PragueVM)))
    return native, inevm, plain


def apply_block(chain, txs, timestamp):
    header = chain.header.copy(timestamp=timestamp)
    vm = chain.get_vm(header)
    _, receipts, _ = vm.apply_all_transactions(txs, header)
    vm.state.persist()
    return vm.state, receipts


def check_equivalent(genesis, native, inevm, txs, timestamp, owners):
    """The in-EVM charge leaves exactly what the native hook leaves (untimed)."""
    activate(Timers())
    native_state, native_receipts = apply_block(native, txs, timestamp)
    inevm_state, inevm_receipts = apply_block(inevm, txs, timestamp)
    for owner in owners:
        # The whole charge chain and head0 as decoded (head1 and freed words: the root).
        a = load_account(native_state, VAULT, owner)
        b = load_account(inevm_state, VAULT, owner)
        assert (a.head, a.lots) == (b.head, b.lots), (owner.hex(), a, b)
    # Every vault word, not only the decoded live ones (freed lot words, reserved bits):
    # the storage roots after persist() are equal iff the vault storages are.
    assert (native_state._account_db._get_storage_root(VAULT)
            == inevm_state._account_db._get_storage_root(VAULT)), "vault storage differs"
    coinbase = native.header.coinbase
    for address in (VAULT, TREASURY, coinbase) + tuple(owners):
        assert native_state.get_balance(address) == inevm_state.get_balance(address), address.hex()
    for a, b in zip(native_receipts, inevm_receipts, strict=True):
        assert a.state_root == b.state_root == b"\x01"
        assert a.gas_used == b.gas_used
        assert a.logs == b.logs, (a.logs, b.logs)
    return native_receipts


def side(chain, txs, timers_per_round):
    def run(r):
        timers = activate(Timers())
        header = chain.header.copy(timestamp=chain.header.timestamp + 10 + r)
        vm = chain.get_vm(header)
        start = time.perf_counter()
        vm.apply_all_transactions(txs, header)
        vm.state.persist()
        seconds = time.perf_counter() - start
        timers.add("whole", seconds)
        if r >= 0:
            timers_per_round.append(dict(timers.seconds))
        return seconds
    return run


# fee_plugin.executor's module-level charge functions (layout v3), timed on both sides;
# instrument.timed_functions splits load_account by phase (validation vs finalize).
# pay_out_fees (called from settle_charge) is left out: balance moves, as documented above.
NATIVE_CHARGE_FUNCTIONS = ("load_account", "plan_charge", "write_account", "charge_logs")
NATIVE_CHARGE_PIECES = ("load_account@finalize", "plan_charge", "write_account", "charge_logs")


def run(rounds=7, senders=100, per_sender=5, lots_per_sender=1):
    keys = sender_keys(senders)
    owners = [k.public_key.to_canonical_address() for k in keys]
    genesis = make_genesis(owners, max_live_lots=64)
    lots = {owner: uniform_lots(lots_per_sender) for owner in owners}
    with timed_functions(fee_plugin.executor, NATIVE_CHARGE_FUNCTIONS):
        native, inevm, plain = chains(genesis, lots)
        txs = transfers(keys, per_sender)
        check_equivalent(genesis, native, inevm, txs, native.header.timestamp + 5, owners)
        InEvmChargeMixin.charge_gas.clear()
        got = {"native": [], "inevm": [], "plain": []}
        times = side_by_side(rounds, [("charge", {
            "native": side(native, txs, got["native"]),
            "inevm": side(inevm, txs, got["inevm"]),
            "plain": side(plain, txs, got["plain"]),
        })])["charge"]
    native_pieces = [sum(t.get(name, 0) for name in NATIVE_CHARGE_PIECES) for t in got["native"]]
    gas = InEvmChargeMixin.charge_gas
    return {
        "benchmark": "in-EVM charge (PaymasterVault.charge as a system call) vs native hook",
        "rounds": rounds,
        "transactions": len(txs),
        "lots_per_sender": lots_per_sender,
        "ratio_finalize_inevm_over_native": summary(ratios(
            [t["finalize_computation"] for t in got["inevm"]],
            [t["finalize_computation"] for t in got["native"]])),
        "ratio_charge_call_over_native_charge_pieces": summary(ratios(
            [t["system_charge_call"] for t in got["inevm"]], native_pieces)),
        "ratio_whole_tx_inevm_over_native": summary(ratios(times["inevm"], times["native"])),
        "ratio_whole_tx_native_over_plain": summary(ratios(times["native"], times["plain"])),
        "ratio_whole_tx_inevm_over_plain": summary(ratios(times["inevm"], times["plain"])),
        "charge_call_gas": {"median": statistics.median(gas), "min": min(gas), "max": max(gas)},
        "native_charge_gas": 0,
    }


if __name__ == "__main__":
    script_main(__doc__, run)
