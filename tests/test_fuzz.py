"""Fuzzing the two hostile-input surfaces: the JSON-RPC request parser and the vault's ABI.

Whatever arrives, the RPC layer answers with a well-formed JSON-RPC response (never an
exception, never a crash), and random calldata sent to the vault never moves credit: every
account's book (lots and totals) is unchanged unless the call was a valid deposit by its owner.
"""
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from fee_plugin.node import ManualClock, Node
from fee_plugin.node.rpc import RpcApi

from .support.chain import ETHER, GENESIS_TIME, USER_KEYS, VAULT, address, calldata, make_genesis, mine, new_chain, sign
from fee_plugin.artifact import vault_abi, vault_function
from fee_plugin.query import execute_call
from fee_plugin.vault import load_account

NODE = Node(make_genesis(), clock=ManualClock(GENESIS_TIME + 5))
API = RpcApi(NODE)
METHODS = sorted(API.methods)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20)
    | st.sampled_from(["latest", "0x0", "0x1", "0x" + "00" * 20, "0x" + "11" * 32, "earliest", "0x"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
requests = st.fixed_dictionaries(
    {"jsonrpc": st.sampled_from(["2.0", "1.0", 2]), "method": st.sampled_from(METHODS) | st.text(max_size=12)},
    optional={"id": st.integers() | st.text(max_size=5) | st.none(), "params": json_values},
)


def _well_formed(response):
    assert response["jsonrpc"] == "2.0" and "id" in response
    assert ("result" in response) != ("error" in response)
    if "error" in response:
        assert isinstance(response["error"]["code"], int) and isinstance(response["error"]["message"], str)


@settings(max_examples=150)
@given(st.one_of(requests, st.lists(requests, min_size=1, max_size=3)))
def test_rpc_answers_any_request_object_with_a_json_rpc_response(payload):
    body = API.handle_body(json.dumps(payload).encode())
    if body is None:  # only notifications (no id) get no answer
        items = payload if isinstance(payload, list) else [payload]
        assert all("id" not in item for item in items)
        return
    answer = json.loads(body)
    for response in answer if isinstance(answer, list) else [answer]:
        _well_formed(response)


@settings(max_examples=100)
@given(st.binary(max_size=200))
def test_rpc_answers_arbitrary_bytes(raw):
    body = API.handle_body(raw)
    if body is not None:
        answer = json.loads(body)
        for response in answer if isinstance(answer, list) else [answer]:
            _well_formed(response)


SELECTORS = [vault_function(e["name"]).selector for e in vault_abi() if e["type"] == "function"]
ALICE, BOB = USER_KEYS[:2]
_, VAULT_CHAIN = new_chain(consumption="upfront")
mine(VAULT_CHAIN, [sign(VAULT_CHAIN, key, VAULT, value=ETHER, data=calldata("deposit"), gas=300_000)
                   for key in (ALICE, BOB)], GENESIS_TIME + 5)


@settings(max_examples=60)
@given(st.sampled_from(SELECTORS + [b"\x00\x00\x00\x00"]), st.binary(max_size=100), st.integers(0, 2 * ETHER))
def test_random_vault_calls_from_a_user_never_touch_another_account(selector, args, value):
    head = VAULT_CHAIN.get_canonical_head()
    call_header = head.copy(base_fee_per_gas=0)  # a free call, executed for real in a scratch state
    vm = VAULT_CHAIN.get_vm(call_header)
    state = vm.build_state(VAULT_CHAIN.chaindb.db, call_header, vm.chain_context, vm.previous_hashes)
    alice_before = load_account(state, VAULT, address(ALICE))
    execute_call(vm, state, VAULT, selector + args, sender=address(BOB), value=value)
    assert load_account(state, VAULT, address(ALICE)) == alice_before
