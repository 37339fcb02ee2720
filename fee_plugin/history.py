"""An account's full fee history, read back from the vault's receipt logs.

Every deposit, grant, charge, expiry and status move is a vault log in some receipt (the
hook's own logs included), so the history is exactly what the chain recorded: block number,
transaction hash and the amounts, decodable by anyone with the vault ABI.
"""
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Dict, List, Tuple

from eth_abi import decode
from eth_bloom import BloomFilter
from eth_typing import Address
from eth_utils import encode_hex, event_abi_to_log_topic, to_checksum_address

from .artifact import vault_abi


@dataclass(frozen=True)
class HistoryEvent:
    block_number: int
    timestamp: int
    transaction_hash: bytes
    log_index: int
    event: str  # the vault event name, e.g. LotDeposited, LotCharged, FeeCharged
    fields: Tuple[Tuple[str, Any], ...]

    def as_json(self) -> Dict[str, Any]:
        fields = {
            name: (to_checksum_address(v) if isinstance(v, str) and v.startswith("0x") and len(v) == 42 else
                   str(v) if isinstance(v, int) and not isinstance(v, bool) else v)
            for name, v in self.fields
        }
        return {
            "blockNumber": self.block_number,
            "timestamp": self.timestamp,
            "transactionHash": encode_hex(self.transaction_hash),
            "logIndex": self.log_index,
            "event": self.event,
            **fields,
        }


@lru_cache(maxsize=1)
def _events() -> Dict[int, Dict[str, Any]]:
    return {
        int.from_bytes(event_abi_to_log_topic(entry), "big"): entry
        for entry in vault_abi()
        if entry["type"] == "event"
    }


def decode_vault_log(log) -> Tuple[str, Dict[str, Any]]:
    """(event name, fields) of a vault log, decoded with the vault's ABI."""
    event = _events()[log.topics[0]]
    indexed = [i for i in event["inputs"] if i["indexed"]]
    plain = [i for i in event["inputs"] if not i["indexed"]]
    values = dict(zip((i["name"] for i in plain), decode([i["type"] for i in plain], log.data)))
    for spec, topic in zip(indexed, log.topics[1:]):
        values[spec["name"]] = decode([spec["type"]], topic.to_bytes(32, "big"))[0]
    return event["name"], {i["name"]: values[i["name"]] for i in event["inputs"]}


def may_hold_events(header, vault: Address, owner: Address) -> bool:
    """The header's logs bloom says whether the block can hold vault logs about `owner`
    (no false negatives), so a scan reads a block's receipts only when it might."""
    if not header.gas_used:
        return False
    bloom = BloomFilter(header.bloom)
    return vault in bloom and owner.rjust(32, b"\x00") in bloom


def block_events(block, receipts, vault: Address, owner: Address) -> List[HistoryEvent]:
    """Vault events about `owner` in one block (log indexes block-wide), in order."""
    owner_topic = int.from_bytes(owner, "big")
    known = _events()
    out = []
    log_index = 0
    for tx, receipt in zip(block.transactions, receipts):
        for log in receipt.logs:
            about_owner = (
                log.address == vault
                and len(log.topics) >= 2
                and log.topics[0] in known
                and log.topics[1] == owner_topic
            )
            if about_owner:
                name, fields = decode_vault_log(log)
                out.append(HistoryEvent(
                    block.number, block.header.timestamp, tx.hash, log_index, name, tuple(fields.items())
                ))
            log_index += 1
    return out


def account_history(chain, owner: Address, start: int, end: int) -> List[HistoryEvent]:
    """Vault events about `owner` in blocks start..end inclusive, in chain order."""
    vault = chain.get_vm().fee_genesis.fee.vault
    out = []
    for number in range(start, end + 1):
        header = chain.get_canonical_block_header_by_number(number)
        if not may_hold_events(header, vault, owner):
            continue
        block = chain.get_block_by_header(header)
        out.extend(block_events(block, block.get_receipts(chain.chaindb), vault, owner))
    return out
