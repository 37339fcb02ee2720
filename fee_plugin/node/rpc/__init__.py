"""JSON-RPC: method groups (api.py and *_methods.py), limits, JSON shapes, HTTP transport."""
from .api import RpcApi
from .http import HttpServer
from .limits import RpcLimits

__all__ = ["HttpServer", "RpcApi", "RpcLimits"]
