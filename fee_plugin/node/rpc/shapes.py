"""JSON shapes of blocks, transactions, receipts and logs: geth's field names and types."""
from typing import Any, Dict, Optional, Tuple

import rlp
from eth._utils.address import generate_contract_address
from eth.abc import BlockAPI, BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI
from eth_utils import encode_hex, to_checksum_address


def _hex(value: int) -> str:
    return hex(value)


def header_json(h: BlockHeaderAPI) -> Dict[str, Any]:
    """geth's header object (eth_subscribe newHeads; the common part of a block)."""
    result = {
        "number": _hex(h.block_number),
        "hash": encode_hex(h.hash),
        "parentHash": encode_hex(h.parent_hash),
        "nonce": encode_hex(h.nonce),
        "mixHash": encode_hex(h.mix_hash),
        "sha3Uncles": encode_hex(h.uncles_hash),
        "logsBloom": encode_hex(h.bloom.to_bytes(256, "big")),
        "transactionsRoot": encode_hex(h.transaction_root),
        "stateRoot": encode_hex(h.state_root),
        "receiptsRoot": encode_hex(h.receipt_root),
        "miner": to_checksum_address(h.coinbase),
        "difficulty": _hex(h.difficulty),
        "extraData": encode_hex(h.extra_data),
        "gasLimit": _hex(h.gas_limit),
        "gasUsed": _hex(h.gas_used),
        "timestamp": _hex(h.timestamp),
        "baseFeePerGas": _hex(h.base_fee_per_gas),
        "withdrawalsRoot": encode_hex(h.withdrawals_root),
        "blobGasUsed": _hex(h.blob_gas_used),
        "excessBlobGas": _hex(h.excess_blob_gas),
        "parentBeaconBlockRoot": encode_hex(h.parent_beacon_block_root),
    }
    if hasattr(h, "requests_hash"):
        result["requestsHash"] = encode_hex(h.requests_hash)
    return result


def block_json(block: BlockAPI, full: bool, pending: bool = False) -> Dict[str, Any]:
    """geth's block object; a pending block has no hash, nonce or miner yet (null)."""
    h = block.header
    result = header_json(h)
    result["totalDifficulty"] = _hex(h.difficulty)
    result["size"] = _hex(len(rlp.encode(block)))
    result["uncles"] = []
    result["withdrawals"] = []
    result["transactions"] = [
        (transaction_json(tx, None, None) if pending else transaction_json(tx, h, i)) if full else encode_hex(tx.hash)
        for i, tx in enumerate(block.transactions)
    ]
    if pending:
        result.update(hash=None, nonce=None, miner=None)
    return result


def transaction_json(tx: SignedTransactionAPI, header: Optional[BlockHeaderAPI], index: Optional[int]) -> Dict[str, Any]:
    result = {
        "hash": encode_hex(tx.hash),
        "type": _hex(tx.type_id or 0),
        "nonce": _hex(tx.nonce),
        "from": to_checksum_address(tx.sender),
        "to": to_checksum_address(tx.to) if tx.to else None,
        "value": _hex(tx.value),
        "gas": _hex(tx.gas),
        "input": encode_hex(tx.data),
        "r": _hex(tx.r),
        "s": _hex(tx.s),
        "v": _hex(tx.v if tx.type_id is None else tx.y_parity),
        "blockHash": encode_hex(header.hash) if header else None,
        "blockNumber": _hex(header.block_number) if header else None,
        "transactionIndex": _hex(index) if index is not None else None,
    }
    if tx.type_id is None or tx.type_id == 1:
        result["gasPrice"] = _hex(tx.gas_price)
    else:
        result["maxFeePerGas"] = _hex(tx.max_fee_per_gas)
        result["maxPriorityFeePerGas"] = _hex(tx.max_priority_fee_per_gas)
        base = header.base_fee_per_gas if header else 0
        result["gasPrice"] = _hex(min(tx.max_fee_per_gas, tx.max_priority_fee_per_gas + base))
    if tx.type_id is not None:
        result["chainId"] = _hex(tx.chain_id)
        result["yParity"] = _hex(tx.y_parity)
        result["accessList"] = [
            {"address": to_checksum_address(a), "storageKeys": [encode_hex(k.to_bytes(32, "big")) for k in keys]}
            for a, keys in tx.access_list
        ]
    elif tx.chain_id is not None:
        result["chainId"] = _hex(tx.chain_id)
    return result


def log_json(log, header: BlockHeaderAPI, tx: SignedTransactionAPI, tx_index: int, log_index: int) -> Dict[str, Any]:
    return {
        "address": to_checksum_address(log.address),
        "topics": [encode_hex(t.to_bytes(32, "big")) for t in log.topics],
        "data": encode_hex(log.data),
        "blockNumber": _hex(header.block_number),
        "blockHash": encode_hex(header.hash),
        "transactionHash": encode_hex(tx.hash),
        "transactionIndex": _hex(tx_index),
        "logIndex": _hex(log_index),
        "removed": False,
    }


def block_logs(block: BlockAPI, receipts: Tuple[ReceiptAPI, ...]):
    """(tx_index, tx, receipt, [(log_index, log)]) for every transaction, log indexes block-wide."""
    log_index = 0
    for tx_index, (tx, receipt) in enumerate(zip(block.transactions, receipts)):
        logs = []
        for log in receipt.logs:
            logs.append((log_index, log))
            log_index += 1
        yield tx_index, tx, receipt, logs


def receipt_json(block: BlockAPI, receipts: Tuple[ReceiptAPI, ...], index: int) -> Dict[str, Any]:
    """The receipt of the transaction at `index` in `block` (log indexes block-wide)."""
    for tx_index, tx, receipt, logs in block_logs(block, receipts):
        if tx_index == index:
            break
    previous = receipts[index - 1].gas_used if index else 0
    base = block.header.base_fee_per_gas
    price = min(tx.max_fee_per_gas, tx.max_priority_fee_per_gas + base)
    contract = None
    if not tx.to:
        contract = to_checksum_address(generate_contract_address(tx.sender, tx.nonce))
    return {
        "transactionHash": encode_hex(tx.hash),
        "transactionIndex": _hex(index),
        "blockHash": encode_hex(block.header.hash),
        "blockNumber": _hex(block.header.block_number),
        "from": to_checksum_address(tx.sender),
        "to": to_checksum_address(tx.to) if tx.to else None,
        "cumulativeGasUsed": _hex(receipt.gas_used),
        "gasUsed": _hex(receipt.gas_used - previous),
        "effectiveGasPrice": _hex(price),
        "contractAddress": contract,
        "logs": [log_json(log, block.header, tx, index, i) for i, log in logs],
        "logsBloom": encode_hex(receipt.bloom.to_bytes(256, "big")),
        "status": "0x1" if receipt.state_root == b"\x01" else "0x0",
        "type": _hex(tx.type_id or 0),
    }


def account_json(view) -> Dict[str, Any]:
    return {
        "address": to_checksum_address(view.address),
        "blockNumber": view.block_number,
        "timestamp": view.timestamp,
        "status": view.status.name,
        "statusCode": int(view.status),
        "available": str(view.available_wei),
        "frozen": view.frozen,
        "deposited": str(view.deposited_wei),
        "charged": str(view.charged_wei),
        "expired": str(view.expired_wei),
        "remaining": str(view.remaining_wei),
        "lots": [
            {
                "lot": lot.slot,
                "amount": str(lot.amount_wei),
                "used": str(lot.used_wei),
                "released": str(lot.released_wei),
                "available": str(lot.available_wei),
                "start": lot.start,
                "expiry": lot.expiry,
                "expired": lot.expired,
            }
            for lot in view.lots
        ],
    }
