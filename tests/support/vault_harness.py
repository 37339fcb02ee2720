"""A small harness for the FeeVault contract on STOCK py-evm (no fee hook).

The vault is predeployed in genesis exactly as the genesis loader does it: the committed
artifact's runtime code plus the config words of contracts/LAYOUT.md. Transactions pay gas
natively (stock Prague); the fee hook is tested elsewhere.

Block time is always explicit: `send`/`mine` stamp the pending header with
`chain.set_header_timestamp(at)` BEFORE applying any transaction, then `mine_block()` seals
exactly what was executed (no re-packing, so the state root matches the execution).
Views run on the head state under a copy of the head header with a chosen timestamp and base
fee 0 (eth_call "latest" semantics, plus time travel), inside a snapshot that is reverted.
"""
from dataclasses import dataclass, replace
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from eth.chains.base import MiningChain
from eth.constants import ZERO_ADDRESS
from eth.db.atomic import AtomicDB
from eth.vm.forks import PragueVM
from eth.vm.spoof import SpoofTransaction
from eth_abi import decode, encode
from eth_keys import keys
from eth_utils import (
    event_abi_to_log_topic,
    function_abi_to_4byte_selector,
    keccak,
    to_canonical_address,
)

from fee_plugin.artifact import vault_abi, vault_runtime_code
from fee_plugin.layout import (
    SLOT_CONSUMPTION_MODE,
    SLOT_INITIAL_RELEASE_BPS,
    SLOT_LOT_VALIDITY,
    SLOT_LOW_BALANCE,
    SLOT_MAX_LIVE_LOTS,
    SLOT_MIN_DEPOSIT,
    SLOT_OPERATOR,
    SLOT_TREASURY,
    NO_LOT,
    Head,
    LotWord,
    Totals,
    account_base_slot,
    head0_slot,
    head1_slot,
    link,
    lot_slot,
    pack_head,
    pack_lot,
    pack_totals,
)
from fee_plugin.lots import Lot
from fee_plugin.query import StoredAccount, read_stored_account

from .chain import ETHER, GWEI

CHAIN_ID = 4242
GENESIS_TIME = 1_700_000_000
BASE_FEE = GWEI
GAS_LIMIT = 30_000_000
CALL_GAS = 10_000_000
VAULT = to_canonical_address("0x000000000000000000000000000000000000fee0")
TREASURY = to_canonical_address("0x00000000000000000000000000000000000007e5")
COINBASE = to_canonical_address("0x00000000000000000000000000000000c0ffee00")
OPERATOR_KEY = keys.PrivateKey(b"\x0a" * 32)
USER_KEYS = tuple(keys.PrivateKey(bytes([0x10 + i]) * 32) for i in range(4))
RICH_KEY = keys.PrivateKey(b"\x99" * 32)  # enough wei to test the 2**84 / 2**96 limits
ERROR_SELECTOR = keccak(b"Error(string)")[:4]

_Chain = MiningChain.configure(
    __name__="VaultHarnessChain", vm_configuration=((0, PragueVM),), chain_id=CHAIN_ID
)


def address(key: keys.PrivateKey) -> bytes:
    return key.public_key.to_canonical_address()


# -- ABI ----------------------------------------------------------------------------------

def _type(param: Dict[str, Any]) -> str:
    return param["type"]  # the vault ABI has no tuple parameters


FUNCTIONS = {e["name"]: e for e in vault_abi() if e["type"] == "function"}
EVENTS = {event_abi_to_log_topic(e): e for e in vault_abi() if e["type"] == "event"}


def calldata(function: str, *args: Any) -> bytes:
    entry = FUNCTIONS[function]
    return function_abi_to_4byte_selector(entry) + encode(
        [_type(p) for p in entry["inputs"]], args
    )


def decode_output(function: str, output: bytes) -> Any:
    types = [_type(p) for p in FUNCTIONS[function]["outputs"]]
    values = decode(types, output)
    return values[0] if len(values) == 1 else values


def revert_reason(output: bytes) -> Optional[str]:
    if output[:4] != ERROR_SELECTOR:
        return None
    return decode(["string"], output[4:])[0]


@dataclass(frozen=True)
class Event:
    name: str
    args: Dict[str, Any]
    address: bytes


def decode_log(log_address: bytes, topics: Sequence[int], data: bytes) -> Event:
    entry = EVENTS[topics[0].to_bytes(32, "big")]
    indexed = [p for p in entry["inputs"] if p["indexed"]]
    plain = [p for p in entry["inputs"] if not p["indexed"]]
    args = {}
    for param, topic in zip(indexed, topics[1:]):
        args[param["name"]] = decode([_type(param)], topic.to_bytes(32, "big"))[0]
    for param, value in zip(plain, decode([_type(p) for p in plain], data)):
        args[param["name"]] = value
    return Event(entry["name"], args, log_address)


def decode_logs(logs: Iterable) -> List[Event]:
    """Receipt logs or a computation's log entries ((address, topics, data) triples)."""
    result = []
    for log in logs:
        if isinstance(log, tuple):
            result.append(decode_log(*log))
        else:
            result.append(decode_log(log.address, log.topics, log.data))
    return result


@dataclass(frozen=True)
class Outcome:
    """One executed transaction or call."""

    success: bool
    output: bytes
    events: List[Event]
    gas_used: int

    @property
    def reason(self) -> Optional[str]:
        return revert_reason(self.output)

    def named(self, name: str) -> List[Dict[str, Any]]:
        return [e.args for e in self.events if e.name == name]


# -- the harness ---------------------------------------------------------------------------

class VaultHarness:
    """A stock Prague chain with the vault predeployed and a few funded keys."""

    def __init__(
        self,
        *,
        operator: bytes = None,
        treasury: bytes = TREASURY,
        lot_validity: int = 1000,
        min_deposit: int = 10**15,
        max_live_lots: int = 8,
        low_balance: int = 10**16,
        mode: int = 0,
        bps: int = 0,
        treasury_code: bytes = b"",
        extra_alloc: Optional[Dict[bytes, Dict[str, Any]]] = None,
    ) -> None:
        self.operator = address(OPERATOR_KEY) if operator is None else operator
        self.treasury = treasury
        self.config = {
            SLOT_OPERATOR: int.from_bytes(self.operator, "big"),
            SLOT_TREASURY: int.from_bytes(treasury, "big"),
            SLOT_LOT_VALIDITY: lot_validity,
            SLOT_MIN_DEPOSIT: min_deposit,
            SLOT_MAX_LIVE_LOTS: max_live_lots,
            SLOT_LOW_BALANCE: low_balance,
            SLOT_CONSUMPTION_MODE: mode,
            SLOT_INITIAL_RELEASE_BPS: bps,
        }
        state = {
            address(key): _account(balance=1000 * ETHER)
            for key in (OPERATOR_KEY,) + USER_KEYS
        }
        state[address(RICH_KEY)] = _account(balance=2**100)
        state[VAULT] = _account(
            nonce=1,
            code=vault_runtime_code(),
            storage={slot: value for slot, value in self.config.items() if value},
        )
        if treasury_code:
            state[treasury] = _account(code=treasury_code)
        state.update(extra_alloc or {})
        params = {
            "timestamp": GENESIS_TIME,
            "gas_limit": GAS_LIMIT,
            "base_fee_per_gas": BASE_FEE,
            "coinbase": COINBASE,
            "difficulty": 0,
            "nonce": b"\x00" * 8,
            "mix_hash": b"\x00" * 32,
            "extra_data": b"",
        }
        self.genesis_params, self.genesis_state = params, state
        self.chain = _Chain.from_genesis(AtomicDB(), params, state)

    def replay(self) -> None:
        """Import every mined block into a fresh chain from the same genesis (full
        validation, re-execution): proves the harness's blocks are valid as mined."""
        fresh = _Chain.from_genesis(AtomicDB(), self.genesis_params, self.genesis_state)
        for number in range(1, self.head.block_number + 1):
            fresh.import_block(self.chain.get_canonical_block_by_number(number))
        assert fresh.get_canonical_head() == self.head

    # -- time and blocks ---------------------------------------------------------------

    @property
    def head(self):
        return self.chain.get_canonical_head()

    @property
    def now(self) -> int:
        return self.head.timestamp

    def sign(self, key, to: bytes, data: bytes = b"", value: int = 0, gas: int = 1_000_000,
             nonce: Optional[int] = None):
        """A signed EIP-1559 (type 2) transaction against the pending state."""
        vm = self.chain.get_vm()
        if nonce is None:
            nonce = vm.state.get_nonce(address(key))
        return vm.get_transaction_builder().new_unsigned_dynamic_fee_transaction(
            CHAIN_ID, nonce, GWEI // 2, 4 * GWEI, gas, to, value, data, ()
        ).as_signed_transaction(key)

    def mine(self, transactions: Sequence = (), at: Optional[int] = None) -> List[Tuple[Any, Any]]:
        """Apply transactions in one block stamped `at` (default head + 1 s) and mine it.

        Returns [(receipt, computation)]."""
        at = self.now + 1 if at is None else at
        assert at > self.now, (at, self.now)
        self.chain.set_header_timestamp(at)  # before execution: TIMESTAMP reads this
        results = []
        for tx in transactions:
            _, receipt, computation = self.chain.apply_transaction(tx)
            results.append((receipt, computation))
        block = self.chain.mine_block()
        assert block.header.timestamp == at
        return results

    def send(self, key, data: bytes = b"", value: int = 0, at: Optional[int] = None,
             to: bytes = VAULT, gas: int = 1_000_000) -> Outcome:
        """One transaction to the vault (or `to`) in its own block at time `at`."""
        ((receipt, computation),) = self.mine([self.sign(key, to, data, value, gas)], at)
        success = receipt.state_root == b"\x01"
        assert success == (not computation.is_error)
        return Outcome(success, computation.output, decode_logs(receipt.logs), receipt.gas_used)

    def transact(self, key, function: str, *args: Any, value: int = 0,
                 at: Optional[int] = None) -> Outcome:
        return self.send(key, calldata(function, *args), value=value, at=at)

    # -- states and read-only execution ---------------------------------------------------

    def state_at(self, t: Optional[int] = None):
        """A fresh, throw-away state of the head block, executing with timestamp t."""
        head = self.head
        header = head.copy(timestamp=head.timestamp if t is None else t, base_fee_per_gas=0)
        vm = self.chain.get_vm(head)
        return vm.build_state(self.chain.chaindb.db, header, vm.chain_context, vm.previous_hashes)

    def execute(self, state, data: bytes, sender: bytes = ZERO_ADDRESS, value: int = 0,
                to: bytes = VAULT) -> Outcome:
        """Run an unsigned, gas-price-0 legacy call in `state`; its effects stay in `state`."""
        unsigned = self.chain.get_vm().create_unsigned_transaction(
            nonce=state.get_nonce(sender), gas_price=0, gas=CALL_GAS, to=to, value=value,
            data=data,
        )
        computation = state.costless_execute_transaction(SpoofTransaction(unsigned, from_=sender))
        events = [] if computation.is_error else decode_logs(computation.get_log_entries())
        return Outcome(not computation.is_error, computation.output, events,
                       CALL_GAS - computation.get_gas_remaining())

    def view_in(self, state, function: str, *args: Any) -> Any:
        """A vault view in `state`; the state is left as it was."""
        snapshot = state.snapshot()
        try:
            outcome = self.execute(state, calldata(function, *args))
        finally:
            state.revert(snapshot)
        assert outcome.success, (function, args, outcome.output)
        return decode_output(function, outcome.output)

    def view(self, function: str, *args: Any, at: Optional[int] = None) -> Any:
        """A vault view at the head, executed at block time `at` (default: the head's)."""
        return self.view_in(self.state_at(at), function, *args)

    def call(self, function: str, *args: Any, sender: bytes = ZERO_ADDRESS, value: int = 0,
             at: Optional[int] = None) -> Outcome:
        """eth_call of any vault function at the head (nothing persists)."""
        return self.execute(self.state_at(at), calldata(function, *args), sender, value)

    # -- storage ------------------------------------------------------------------------

    @property
    def state(self):
        return self.state_at()

    def balance(self, who: bytes) -> int:
        return self.state.get_balance(who)

    def stored(self, owner: bytes, state=None) -> StoredAccount:
        """The account's words decoded with fee_plugin (both chains read whole)."""
        return read_stored_account(self.state if state is None else state, VAULT, owner)

    @staticmethod
    def write_account(state, owner: bytes, head: Head, totals: Totals, charge_lots: Sequence[Lot],
                      spent_lots: Sequence[Lot] = ()) -> None:
        """Overwrite an account's words in `state`: the chains linked in the order given
        (head's links are set from them), all 64 lot slots written (free ones zeroed)."""
        base = account_base_slot(owner)
        words = {}
        for chain in (charge_lots, spent_lots):
            for lot, following in zip(chain, tuple(chain[1:]) + (None,)):
                words[lot.slot] = pack_lot(LotWord(lot, NO_LOT if following is None else link(following.slot)))
        first = link(charge_lots[0].slot) if charge_lots else NO_LOT
        spent = link(spent_lots[0].slot) if spent_lots else NO_LOT
        state.set_storage(VAULT, head0_slot(base), pack_head(replace(head, first=first, spent=spent)))
        state.set_storage(VAULT, head1_slot(base), pack_totals(totals))
        for i in range(64):
            state.set_storage(VAULT, lot_slot(base, i), words.get(i, 0))


def _account(balance: int = 0, nonce: int = 0, code: bytes = b"", storage=None) -> Dict[str, Any]:
    return {"balance": balance, "nonce": nonce, "code": code, "storage": storage or {}}
