"""Quick start: a fee-plugin chain from the example genesis, one deposit, one transfer."""
from pathlib import Path

from eth_keys import keys

from fee_plugin import build_chain, fee_account, load_genesis
from fee_plugin.artifact import vault_function

GWEI = 10**9
genesis = load_genesis(Path(__file__).with_name("genesis.json"))
chain = build_chain(genesis)
key = keys.PrivateKey(b"\x01" * 32)  # a throwaway dev key funded in the example genesis
me = key.public_key.to_canonical_address()


def send(to, value=0, data=b"", gas=100_000, at=None):
    builder = chain.get_vm().get_transaction_builder()
    nonce = chain.get_vm().state.get_nonce(me)
    tx = builder.new_unsigned_dynamic_fee_transaction(
        genesis.chain_id, nonce, GWEI, 2 * GWEI, gas, to, value, data, ()
    ).as_signed_transaction(key)
    chain.set_header_timestamp(at)
    _, receipt, _ = chain.apply_transaction(tx)
    chain.mine_block()
    return receipt


t0 = genesis.timestamp
balance = chain.get_vm().state.get_balance(me)
receipt = send(genesis.fee.vault, 10**18, vault_function("deposit").selector, gas=300_000, at=t0 + 12)
assert receipt.state_root == b"\x01", "deposit reverted"  # paid natively (bootstrap)
print("deposit gas used:", receipt.gas_used)
print("after deposit:", fee_account(chain, me))
one_day = t0 + 12 + 86_400
receipt = send(b"\x42" * 20, value=1, gas=21_000, at=one_day)  # fee from the lot
acct = fee_account(chain, me)
print(f"day 1: status {acct.status.name}, available {acct.available_wei} wei, "
      f"charged {acct.charged_wei} wei, gas used {receipt.gas_used}")
