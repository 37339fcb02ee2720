"""JSON-RPC error codes and the error every method raises (geth's codes and texts)."""
from typing import Any, Dict

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000  # geth: rejected transactions, execution failures
LIMIT_EXCEEDED = -32005  # busy call workers, result caps
EXECUTION_REVERTED = 3  # geth: eth_call / eth_estimateGas revert, with the revert data


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def as_json(self) -> Dict[str, Any]:
        error: Dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def error_response(request_id: Any, error: RpcError) -> Dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.as_json()}
