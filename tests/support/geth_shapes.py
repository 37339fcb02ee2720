"""Field names of geth's JSON objects (internal/ethapi), pinned by the RPC tests."""
GETH_RECEIPT = {"transactionHash", "transactionIndex", "blockHash", "blockNumber", "from", "to",
                "cumulativeGasUsed", "gasUsed", "effectiveGasPrice", "contractAddress", "logs", "logsBloom",
                "status", "type"}
GETH_TX_1559 = {"hash", "type", "nonce", "from", "to", "value", "gas", "input", "r", "s", "v", "yParity",
                "blockHash", "blockNumber", "transactionIndex", "gasPrice", "maxFeePerGas",
                "maxPriorityFeePerGas", "chainId", "accessList"}
GETH_HEADER = {"number", "hash", "parentHash", "nonce", "mixHash", "sha3Uncles", "logsBloom", "transactionsRoot",
               "stateRoot", "receiptsRoot", "miner", "difficulty", "extraData", "gasLimit", "gasUsed",
               "timestamp", "baseFeePerGas", "withdrawalsRoot", "blobGasUsed", "excessBlobGas",
               "parentBeaconBlockRoot", "requestsHash"}
GETH_BLOCK = GETH_HEADER | {"size", "totalDifficulty", "uncles", "withdrawals", "transactions"}
