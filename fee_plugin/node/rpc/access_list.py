"""eth_createAccessList: the EIP-2930 access list a call would use, and its gas with it.

geth's method: run the call as an access-list transaction, collect the addresses and
storage slots it touched, run again with that list, until the list no longer changes
(bounded here by MAX_ROUNDS). Addresses warm anyway are left out (sender, recipient or
created contract, precompiles, coinbase), with their slots, as geth's tracer does. The
touched set is py-evm's own warm-access journal, read before the call's state is
reverted. Same limits as eth_call (gas cap, time budget, call workers).
"""
from typing import Any, Dict, List, Set, Tuple

from eth.constants import CREATE_CONTRACT_ADDRESS
from eth.vm.spoof import SpoofTransaction
from eth_utils import ValidationError, encode_hex, to_checksum_address

from .calls import CallTimeout, failure
from .errors import INVALID_PARAMS, SERVER_ERROR, RpcError
from .params import address, hash32
from .tx_methods import TransactionMethods

MAX_ROUNDS = 8
AccessList = Tuple[Tuple[bytes, Tuple[int, ...]], ...]


def parse_access_list(value: Any) -> AccessList:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RpcError(INVALID_PARAMS, "accessList: expected a list")
    out = []
    for i, entry in enumerate(value):
        if not isinstance(entry, dict) or not isinstance(entry.get("storageKeys", []), list):
            raise RpcError(INVALID_PARAMS, f"accessList[{i}]: expected {{address, storageKeys}}")
        keys = tuple(int.from_bytes(hash32(k, f"accessList[{i}].storageKeys"), "big")
                     for k in entry.get("storageKeys", []))
        out.append((address(entry.get("address"), f"accessList[{i}].address"), keys))
    return tuple(out)


def _touched(state, excluded: Set[bytes]) -> AccessList:
    """Addresses and slots marked warm in `state` since its last lock, minus `excluded`."""
    slots: Dict[bytes, Set[int]] = {}
    for key in state._account_db._journal_accessed_state.diff().pending_keys():
        owner = key[:20]
        if owner in excluded:
            continue
        entry = slots.setdefault(owner, set())
        if len(key) > 20:
            entry.add(int.from_bytes(key[20:], "big"))
    return tuple((owner, tuple(sorted(keys))) for owner, keys in sorted(slots.items()))


def access_list_json(access_list: AccessList) -> List[Dict[str, Any]]:
    return [{"address": to_checksum_address(owner),
             "storageKeys": [encode_hex(k.to_bytes(32, "big")) for k in keys]}
            for owner, keys in access_list]


class AccessListMethods(TransactionMethods):
    def rpc_eth_createAccessList(self, params):
        header, sender, to, payload, gas, value, db = self._call_params(params)
        given = parse_access_list(params[0].get("accessList"))
        gas = self.calls.gas_for(header, gas)

        def work(vm, state):
            access_list = given
            for _ in range(MAX_ROUNDS):
                used, error, touched = self._run(vm, state, sender, to, payload, gas, value, access_list)
                if touched == access_list:
                    break
                access_list = touched
            return access_list, used, error

        access_list, used, error = self.calls.with_state(header, db, work)
        result = {"accessList": access_list_json(access_list), "gasUsed": hex(used)}
        if error is not None:
            result["error"] = error
        return result

    def _run(self, vm, state, sender, to, payload, gas, value, access_list: AccessList):
        """(gas used, error text or None, touched access list) of one execution."""
        unsigned = vm.get_transaction_builder().new_unsigned_access_list_transaction(
            self.node.genesis.chain_id, state.get_nonce(sender), 0, gas,
            CREATE_CONTRACT_ADDRESS if to is None else to, value, payload, access_list)
        snapshot = state.snapshot()
        try:
            computation = state.costless_execute_transaction(SpoofTransaction(unsigned, from_=sender))
            target = to if to is not None else computation.msg.storage_address
            excluded = {sender, target, state.coinbase,
                        *vm.get_state_class().computation_class.get_precompiles()}
            touched = _touched(state, excluded)
        except CallTimeout:
            raise RpcError(SERVER_ERROR, f"execution aborted (timeout = {self.limits.evm_timeout_seconds:g}s)")
        except ValidationError as err:
            raise RpcError(SERVER_ERROR, str(err)) from None
        finally:
            state.revert(snapshot)
        used = gas - computation.get_gas_remaining()
        used -= min(computation.get_gas_refund(), used // 5)  # EIP-3529 refund cap
        floor = vm.get_state_class().transaction_executor_class.calc_data_floor_gas(unsigned, 0, 0)
        error = failure(computation).message if computation.is_error else None
        return max(used, floor), error, touched
