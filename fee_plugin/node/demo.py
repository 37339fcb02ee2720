"""`fee-node demo`: prepaid fee lots at work on an in-process node with simulated time."""
from eth_abi import encode
from eth_keys import keys
from rich.console import Console
from rich.table import Table

from ..artifact import vault_function
from ..genesis import load_genesis
from ..history import account_history
from ..lots import Status
from ..query import fee_account
from .admission import TxRejected
from .clock import ManualClock
from .node import Node

DAY = 86_400
GWEI = 10**9
ETHER = 10**18
START = 1_767_225_600  # 2026-01-01T00:00:00Z, a fixed simulated clock

USER = keys.PrivateKey(b"\x01" * 32)  # throwaway dev keys
OPERATOR = keys.PrivateKey(b"\x02" * 32)


def demo_genesis(validity_days: int):
    return load_genesis({
        "config": {"chainId": 1337, "fork": "prague", "feePlugin": {
            "layoutVersion": 3,
            "vault": "0x000000000000000000000000000000000000fee0",
            "operator": OPERATOR.public_key.to_checksum_address(),
            "treasury": "0x00000000000000000000000000000000007e5a57",
            "lotValiditySeconds": validity_days * DAY,
            "minDeposit": str(10**15), "maxLiveLots": 8, "lowBalance": str(2 * 10**14)}},
        "timestamp": START, "gasLimit": 30_000_000, "baseFeePerGas": GWEI,
        "coinbase": "0x00000000000000000000000000000000000c01b5",
        "alloc": {k.public_key.to_checksum_address(): {"balance": str(10 * ETHER)} for k in (USER, OPERATOR)},
    })


def run_demo(console: Console, days: int = 40) -> None:
    clock = ManualClock(START)
    genesis = demo_genesis(validity_days=30)
    node = Node(genesis, clock=clock)
    user = USER.public_key.to_canonical_address()
    vault = genesis.fee.vault
    nonces = {}

    def send(key, to, value=0, data=b"", gas=21_000, max_fee=2 * GWEI):
        sender = key.public_key.to_canonical_address()
        nonce = node.pool.next_nonce(sender)
        tx = node.chain.get_vm().get_transaction_builder().new_unsigned_dynamic_fee_transaction(
            genesis.chain_id, nonce, GWEI // 10, max_fee, gas, to, value, data, ()
        ).as_signed_transaction(key)
        nonces[sender] = nonce + 1
        tx_hash = node.send_transaction(tx)
        node.produce()  # the simulated clock moved: seal the block at once
        return tx_hash

    def balance():
        head = node.chain.get_canonical_head()
        vm = node.chain.get_vm(head)
        return vm.build_state(node.chain.chaindb.db, head, vm.chain_context).get_balance(user)

    def show(title):
        acct = fee_account(node.chain, user)
        table = Table(title=f"{title}: status {acct.status.name}, available {acct.available_wei / ETHER:.6f} ETH",
                      title_justify="left")
        for col in ("lot", "amount", "validity", "released", "used", "available"):
            table.add_column(col, justify="right")
        for lot in acct.lots:
            table.add_row(str(lot.slot), f"{lot.amount_wei / ETHER:.4f}", f"{(lot.expiry - lot.start) // DAY} d",
                          f"{lot.released_wei / ETHER:.6f}", f"{lot.used_wei / ETHER:.6f}",
                          "expired" if lot.expired else f"{lot.available_wei / ETHER:.6f}")
        console.print(table)

    console.rule("[bold]fee-plugin demo: prepaid, earmarked fee lots")
    console.print(f"user {USER.public_key.to_checksum_address()} starts with {balance() / ETHER} ETH")
    clock.advance(60)
    send(USER, vault, value=ETHER // 100, data=vault_function("deposit").selector, gas=300_000)
    after_deposit = balance()
    console.print("1. the user deposits 0.01 ETH: lot 0, valid 30 days (this first deposit pays gas natively)")
    clock.advance(60)
    grant = vault_function("grant")
    send(OPERATOR, vault, value=ETHER // 200, gas=300_000,
         data=grant.selector + encode(grant.input_types, (user, 10 * DAY)))
    console.print("2. the operator grants 0.005 ETH of credit bought off-chain: lot 1, valid 10 days")
    show("after the deposits")

    recipient = b"\x42" * 20
    for day in (1, 3, 6, 9, 12, 20, min(29, days), days):
        clock.set(START + day * DAY)
        try:
            send(USER, recipient, value=1)
            console.print(f"day {day}: transfer included, fee paid from lots")
        except TxRejected as err:
            node.produce(force_empty=True)  # let the chain's clock reach the day anyway
            console.print(f"day {day}: [red]transfer rejected[/red]: {err}")
        head = node.chain.get_canonical_head().block_number
        for event in account_history(node.chain, user, head, head):
            fields = dict(event.fields)
            if event.event == "LotExpired":
                console.print(f"  lot {fields['lot']} expired: its unused {fields['remainder'] / ETHER:.6f} ETH "
                              "went to the treasury")
            elif event.event == "StatusChanged":
                console.print(f"  status {Status(fields['old']).name} -> {Status(fields['new']).name}")
        show(f"day {day}")
        if day == 20:
            try:
                send(USER, recipient, value=1, gas=800_000, max_fee=10 * GWEI)
            except TxRejected as err:
                console.print(f"[red]a transaction that may cost 0.008 ETH of gas is rejected[/red]: {err}")

    spent = after_deposit - balance()
    console.print(f"[green]the user's ETH balance paid only the transfers' value ({spent} wei) — never gas[/green]")
