"""The JSON-RPC API: method groups composed into one class, and request dispatch.

Dispatch owns the request-level limits (nesting depth before parsing, batch size, time
budgets shared by a batch, response size) and turns every failure into a JSON-RPC
error object: no input reaches the transport as an exception.
"""
import json
import logging
from typing import Any, Callable, Dict, List, Optional

from ..node import Node
from .access_list import AccessListMethods
from .block_methods import BlockMethods
from .chain_methods import ChainMethods
from .cluster_methods import ClusterMethods
from .console_methods import ConsoleMethods
from .errors import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    LIMIT_EXCEEDED,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    RpcError,
    error_response,
)
from .limits import RpcLimits, check_depth, start_request
from .log_methods import FeeMethods
from .net_methods import NetMethods
from .proof import ProofMethods
from .subscriptions import SubscriptionMethods
from .txpool_methods import TxPoolMethods

log = logging.getLogger("fee_plugin.node.rpc")


class RpcApi(ChainMethods, BlockMethods, AccessListMethods, FeeMethods,
             SubscriptionMethods, ProofMethods, NetMethods, TxPoolMethods, ConsoleMethods,
             ClusterMethods):
    """Method name -> handler; every handler takes the JSON params list."""

    def __init__(self, node: Node, limits: RpcLimits = RpcLimits()) -> None:
        super().__init__(node, limits)
        # (method, error code or 0) per request, e.g. for metrics; names are untrusted input
        self.observer: Optional[Callable[[str, int], None]] = None
        self.methods: Dict[str, Callable[[List[Any]], Any]] = {
            name[4:].replace("__", "_"): getattr(self, name)
            for name in dir(self)
            if name.startswith("rpc_")
        }

    def handle(self, request: Any) -> Optional[Dict[str, Any]]:
        """One request object -> response object (None for a notification)."""
        response = self._handle(request)
        if self.observer is not None:
            method = request.get("method") if isinstance(request, dict) else None
            error = (response or {}).get("error")
            self.observer(method if isinstance(method, str) else "", error["code"] if error else 0)
        return response

    def _handle(self, request: Any) -> Optional[Dict[str, Any]]:
        if (not isinstance(request, dict) or request.get("jsonrpc") != "2.0"
                or not isinstance(request.get("method"), str)):
            return error_response(None, RpcError(INVALID_REQUEST, "invalid request"))
        request_id = request.get("id")
        if isinstance(request_id, (dict, list)):
            return error_response(None, RpcError(INVALID_REQUEST, "invalid request id"))
        try:
            method = self.methods.get(request["method"])
            if method is None:
                raise RpcError(METHOD_NOT_FOUND, f"the method {request['method'][:64]} does not "
                               "exist/is not available")
            params = request.get("params", [])
            if not isinstance(params, list):
                raise RpcError(INVALID_PARAMS, "params must be a list")
            response = {"jsonrpc": "2.0", "id": request_id, "result": method(params)}
        except RpcError as err:
            response = error_response(request_id, err)
        except Exception as err:  # never crash the server on one request
            log.exception("internal error in %s", request.get("method"))
            response = error_response(request_id, RpcError(
                INTERNAL_ERROR, f"internal error: {type(err).__name__}: {err}"))
        return None if "id" not in request else response

    def handle_body(self, body: bytes) -> Optional[bytes]:
        """A whole HTTP body -> the response body (None: nothing to answer)."""
        start_request(self.limits)
        try:
            check_depth(body, self.limits.max_json_depth)
            payload = json.loads(body)
        except RpcError as err:
            return _encode(error_response(None, err))
        except (ValueError, UnicodeDecodeError, RecursionError) as err:
            return _encode(error_response(None, RpcError(PARSE_ERROR, f"parse error: {err}")))
        if isinstance(payload, list):
            if not payload or len(payload) > self.limits.max_batch:
                return _encode(error_response(None, RpcError(
                    INVALID_REQUEST, f"batch must hold 1..{self.limits.max_batch} requests")))
            responses, size = [], 0
            for item in payload:
                response = self.handle(item)
                if response is None:
                    continue
                size += len(_encode(response))
                if size > self.limits.max_response_bytes:
                    response = error_response(response.get("id"), RpcError(
                        LIMIT_EXCEEDED, f"batch response exceeds {self.limits.max_response_bytes} bytes"))
                responses.append(response)
            return _encode(responses) if responses else None
        response = self.handle(payload)
        if response is None:
            return None
        encoded = _encode(response)
        if len(encoded) > self.limits.max_response_bytes:
            return _encode(error_response(response.get("id"), RpcError(
                LIMIT_EXCEEDED, f"response exceeds {self.limits.max_response_bytes} bytes")))
        return encoded


def _encode(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
