"""eth_call and eth_estimateGas: bounded in gas, time and concurrency, off the producer.

Each call runs on its own state object built on a committed header (the producer never
waits for it), in a call-only VM whose loop and call opcodes check a deadline, so a
looping contract stops at the time budget instead of holding a worker (geth's
--rpc.evmtimeout; the budget is shared by all executions of one request, batch or
estimate). Gas is capped (--rpc.gascap), and at most `call_workers` calls run at once;
the rest wait briefly, then get a clear "busy" error. Nothing here touches consensus code:
the call VM is derived from the chain's VM class only for these reads.
"""
import threading
import time
from functools import lru_cache
from typing import Any, Optional

from eth.abc import BlockHeaderAPI, ComputationAPI
from eth.constants import CREATE_CONTRACT_ADDRESS
from eth.exceptions import (
    ContractCreationCollision,
    FullStack,
    InsufficientStack,
    InvalidInstruction,
    InvalidJumpDestination,
    OutOfBoundsRead,
    OutOfGas,
    Revert,
    StackDepthLimit,
    WriteProtection,
)
from eth.vm.spoof import SpoofTransaction
from eth_abi import decode
from eth_utils import ValidationError, encode_hex

from .errors import EXECUTION_REVERTED, LIMIT_EXCEEDED, SERVER_ERROR, RpcError
from .limits import call_deadline

# JUMP, JUMPI, CREATE, CALL, CALLCODE, DELEGATECALL, CREATE2, STATICCALL: every way code
# can run for long passes through one of these.
GUARDED_OPCODES = (0x56, 0x57, 0xF0, 0xF1, 0xF2, 0xF4, 0xF5, 0xFA)
ESTIMATE_TOLERANCE_PER_MILLE = 15  # geth: stop the search within 1.5 % of the answer
ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)
PANIC_REASONS = {
    0x00: "generic panic", 0x01: "assert(false)", 0x11: "arithmetic underflow or overflow",
    0x12: "division or modulo by zero", 0x21: "enum overflow",
    0x22: "invalid encoded storage byte array accessed",
    0x31: "out-of-bounds array access; popping on an empty array",
    0x32: "out-of-bounds access of an array or bytesN", 0x41: "out of memory",
    0x51: "uninitialized function",
}


class CallTimeout(Exception):
    """Not a VMError: it unwinds the whole call instead of failing one frame."""


def _guard(opcode_fn):
    def guarded(computation) -> None:
        if time.monotonic() > computation.state.rpc_deadline:
            raise CallTimeout()
        opcode_fn(computation=computation)

    return guarded


@lru_cache(maxsize=None)
def call_vm_class(vm_class):
    """`vm_class` with a deadline check on GUARDED_OPCODES, for RPC calls only."""
    state_class = vm_class.get_state_class()
    computation = state_class.computation_class
    opcodes = {
        op: (_guard(fn) if op in GUARDED_OPCODES else fn) for op, fn in computation.opcodes.items()
    }
    call_computation = type(f"Call{computation.__name__}", (computation,), {"opcodes": opcodes})
    call_state = type(f"Call{state_class.__name__}", (state_class,),
                      {"computation_class": call_computation, "rpc_deadline": float("inf")})
    return type(f"Call{vm_class.__name__}", (vm_class,), {"_state_class": call_state})


def revert_message(output: bytes) -> str:
    """geth's text: "execution reverted" plus a decoded Error(string) or Panic(uint256)."""
    try:
        if output[:4] == ERROR_SELECTOR:
            return f"execution reverted: {decode(['string'], output[4:])[0]}"
        if output[:4] == PANIC_SELECTOR:
            code = decode(["uint256"], output[4:])[0]
            return f"execution reverted: {PANIC_REASONS.get(code, f'unknown panic code: {code:#x}')}"
    except Exception:  # malformed revert data: report it raw
        pass
    return "execution reverted"


class CallRunner:
    """Runs read-only calls for the RPC with the limits above."""

    def __init__(self, chain, limits) -> None:
        self.chain = chain
        self.limits = limits
        self.slots = threading.BoundedSemaphore(limits.call_workers)

    def _state(self, header: BlockHeaderAPI, db=None):
        vm = self.chain.get_vm(header)
        call_header = header.copy(base_fee_per_gas=0)  # a free call passes the fee check
        state = call_vm_class(type(vm)).build_state(
            self.chain.chaindb.db if db is None else db, call_header, vm.chain_context, vm.previous_hashes)
        state.rpc_deadline = call_deadline()
        return vm, state

    def _slot(self):
        if not self.slots.acquire(timeout=self.limits.call_queue_seconds):
            raise RpcError(LIMIT_EXCEEDED, f"busy: {self.limits.call_workers} calls are already "
                           "running; try again shortly")
        return self.slots

    def _execute(self, vm, state, sender: bytes, to: Optional[bytes], data: bytes, gas: int,
                 value: int) -> ComputationAPI:
        unsigned = vm.create_unsigned_transaction(
            nonce=state.get_nonce(sender), gas_price=0, gas=gas,
            to=CREATE_CONTRACT_ADDRESS if to is None else to, value=value, data=data)
        snapshot = state.snapshot()
        try:
            return state.costless_execute_transaction(SpoofTransaction(unsigned, from_=sender))
        except CallTimeout:
            raise RpcError(SERVER_ERROR, f"execution aborted (timeout = {self.limits.evm_timeout_seconds:g}s)")
        except ValidationError as err:
            raise RpcError(SERVER_ERROR, _validation_text(err)) from None
        finally:
            state.revert(snapshot)

    def with_state(self, header: BlockHeaderAPI, db, work):
        """`work(vm, state)` in a call worker slot, on a fresh call state at `header`
        (for executions that need more than call/estimate, e.g. eth_createAccessList)."""
        slot = self._slot()
        try:
            return work(*self._state(header, db))
        finally:
            slot.release()

    def gas_for(self, header: BlockHeaderAPI, gas: Optional[int]) -> int:
        limit = header.gas_limit if gas is None else gas
        return min(limit, self.limits.gas_cap)

    def call(self, header, sender, to, data, gas, value, db=None) -> bytes:
        slot = self._slot()
        try:
            vm, state = self._state(header, db)
            computation = self._execute(vm, state, sender, to, data, self.gas_for(header, gas), value)
        finally:
            slot.release()
        if computation.is_error:
            raise failure(computation)
        return computation.output

    def estimate(self, header, sender, to, data, gas, value, db=None) -> int:
        """geth's search: run at the cap, then binary search to within 1.5 %."""
        slot = self._slot()
        try:
            vm, state = self._state(header, db)
            high = self.gas_for(header, gas)
            computation = self._execute(vm, state, sender, to, data, high, value)
            if computation.is_error:
                if _is_revert(computation):
                    raise failure(computation)
                raise RpcError(SERVER_ERROR, f"gas required exceeds allowance ({high})")
            used = high - computation.get_gas_remaining()
            low = used - 1
            optimistic = min(high, (used + computation.get_gas_refund() + 2300) * 64 // 63)
            if optimistic < high and not self._fails(vm, state, sender, to, data, optimistic, value):
                high = optimistic
            while high - low > 1 and (high - low) * 1000 > high * ESTIMATE_TOLERANCE_PER_MILLE:
                mid = (low + high) // 2
                if self._fails(vm, state, sender, to, data, mid, value):
                    low = mid
                else:
                    high = mid
            return high
        finally:
            slot.release()

    def _fails(self, vm, state, sender, to, data, gas, value) -> bool:
        try:
            return self._execute(vm, state, sender, to, data, gas, value).is_error
        except RpcError as err:
            if "timeout" in err.message:
                raise
            return True  # e.g. gas below the intrinsic cost


def _is_revert(computation: ComputationAPI) -> bool:
    return isinstance(computation.error, Revert)


def failure(computation: ComputationAPI) -> RpcError:
    """geth's error for a failed call: code 3 with the revert data, else -32000."""
    if _is_revert(computation):
        output = computation.output
        return RpcError(EXECUTION_REVERTED, revert_message(output), encode_hex(output))
    return RpcError(SERVER_ERROR, _vm_error_text(computation.error))


_VM_ERRORS = (
    (OutOfGas, "out of gas"), (InvalidInstruction, "invalid opcode"),
    (InvalidJumpDestination, "invalid jump destination"), (StackDepthLimit, "max call depth exceeded"),
    (WriteProtection, "write protection"), (InsufficientStack, "stack underflow"),
    (FullStack, "stack limit reached"), (ContractCreationCollision, "contract address collision"),
    (OutOfBoundsRead, "return data out of bounds"),
)


def _vm_error_text(error: Any) -> str:
    """geth's wording for the EVM errors wallets show."""
    for kind, text in _VM_ERRORS:
        if isinstance(error, kind):
            return text
    return f"execution failed: {error}"


def _validation_text(err: ValidationError) -> str:
    text = str(err)
    if "balance" in text.lower() or "funds" in text.lower():
        return f"insufficient funds for transfer: {text}"
    return text

