"""Who may talk to the node from a browser: CORS, virtual hosts, WebSocket origins (geth's rules).

- `--http-corsdomain`: origins a page may call from (none by default; `*` only by explicit
  choice). Preflight OPTIONS answered (POST, GET; any request header; cached 600 s).
- `--http-vhosts`: accepted Host headers on HTTP requests (default `localhost`; an IP
  address is always accepted, `*` accepts all): stops DNS rebinding from reaching a node
  bound to loopback.
- `--ws-origins`: Origin headers accepted on WebSocket upgrades, which CORS does not
  protect (default: http://localhost and http://<this hostname>, any port). Requests
  without an Origin header (non-browser clients) pass, as in geth.
"""
import ipaddress
import socket
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional, Tuple
from urllib.parse import urlsplit

from aiohttp import hdrs, web

PREFLIGHT_MAX_AGE_SECONDS = 600
CORS_METHODS = "POST, GET"


def split_list(text: Optional[str]) -> Tuple[str, ...]:
    """A comma-separated flag value -> its non-empty entries."""
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


def _hostname(host: str) -> str:
    try:
        return (urlsplit("//" + host).hostname or host).lower()
    except ValueError:
        return host.lower()


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=256)  # bounded: Host headers are client input; parsing one costs ~10 us a request
def _host_allowed(host: str, vhosts: Tuple[str, ...]) -> bool:
    name = _hostname(host)
    return _is_ip(name) or name in {v.lower() for v in vhosts}


def _origin_parts(origin: str) -> Tuple[str, str, str]:
    """(scheme, hostname, port) of an origin or an origin rule; missing parts are ""."""
    text = origin.strip().lower()
    if "://" not in text:
        text = "//" + text
    try:
        parts = urlsplit(text)
        port = str(parts.port) if parts.port is not None else ""
    except ValueError:
        return ("", text, "")
    return (parts.scheme, parts.hostname or "", port)


@dataclass(frozen=True)
class AccessRules:
    cors_origins: Tuple[str, ...] = ()
    vhosts: Tuple[str, ...] = ("localhost",)
    ws_origins: Tuple[str, ...] = ()

    def host_allowed(self, host: Optional[str]) -> bool:
        if not host or "*" in self.vhosts:
            return True
        return _host_allowed(host, self.vhosts)

    def cors_allow_origin(self, origin: Optional[str]) -> Optional[str]:
        """The Access-Control-Allow-Origin value for `origin`, None if not allowed."""
        if not origin or not self.cors_origins:
            return None
        if "*" in self.cors_origins:
            return "*"
        return origin if origin.lower() in {o.lower() for o in self.cors_origins} else None

    def ws_origin_allowed(self, origin: Optional[str]) -> bool:
        if origin is None or "*" in self.ws_origins:
            return True
        rules = self.ws_origins or ("http://localhost", "http://" + socket.gethostname())
        scheme, host, port = _origin_parts(origin)
        for rule in rules:
            want_scheme, want_host, want_port = _origin_parts(rule)
            if ((not want_scheme or want_scheme == scheme) and (not want_host or want_host == host)
                    and (not want_port or want_port == port)):
                return True
        return False


def is_websocket_upgrade(request: web.Request) -> bool:
    return (request.method == "GET"
            and request.headers.get(hdrs.UPGRADE, "").lower() == "websocket")


def access_middleware(rules: AccessRules):
    """aiohttp middleware enforcing `rules` on every request."""

    @web.middleware
    async def middleware(request: web.Request, handler):
        if is_websocket_upgrade(request):
            if not rules.ws_origin_allowed(request.headers.get(hdrs.ORIGIN)):
                return web.Response(status=403, text="websocket: origin not allowed\n")
            return await handler(request)
        if not rules.host_allowed(request.host):
            return web.Response(status=403, text="invalid host specified\n")
        allow_origin = rules.cors_allow_origin(request.headers.get(hdrs.ORIGIN))
        if request.method == "OPTIONS":
            return _preflight(request, rules, allow_origin)
        response = await handler(request)
        if allow_origin is not None:
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = allow_origin
            response.headers[hdrs.VARY] = "Origin"
        return response

    return middleware


def _preflight(request: web.Request, rules: AccessRules, allow_origin: Optional[str]) -> web.Response:
    if not rules.cors_origins:
        return web.Response(status=405, headers={hdrs.ALLOW: "POST, GET"})
    headers = {hdrs.VARY: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"}
    method = request.headers.get(hdrs.ACCESS_CONTROL_REQUEST_METHOD, "").upper()
    if allow_origin is not None and method in ("POST", "GET"):
        headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = allow_origin
        headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = method
        wanted = request.headers.get(hdrs.ACCESS_CONTROL_REQUEST_HEADERS)
        if wanted:
            headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = wanted
        headers[hdrs.ACCESS_CONTROL_MAX_AGE] = str(PREFLIGHT_MAX_AGE_SECONDS)
    return web.Response(status=204, headers=headers)
