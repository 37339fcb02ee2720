"""The operator and regulator console: a read-only page served by the node at /console.

It shows nothing the JSON-RPC does not already show: its script calls the node's own
fee_* methods on the same origin (so the RPC's host binding, vhost and CORS rules apply
to it too), and the export writes exactly the rows `fee-node history` prints. Assets ship
in the package (no CDN: the page works on a machine with no internet). Charts are SVG
drawn by the page's own script rather than a charting library: nothing to vendor or
license, a few dozen lines, and every plotted point is in the DOM where tests can read it.
Live updates poll the head every two seconds and refresh the page's data when it moves.
"""
import io
import re
from importlib import resources
from typing import Any, Dict, List

from aiohttp import web
from eth_utils import is_address, to_canonical_address

from ...history import account_history
from ..history_export import emit_rows

STATIC = {"console.js": "application/javascript", "console.css": "text/css", "index.html": "text/html"}
EXPORT_CHUNK_BLOCKS = 2_000  # as `fee-node history` fetches it
EXPORT_ROWS_MAX = 500_000
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def _asset(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


def export_rows(chain, owner: bytes) -> List[Dict[str, Any]]:
    """Every history row of `owner`, as `fee-node history` collects them."""
    head = chain.get_canonical_head().block_number
    rows: List[Dict[str, Any]] = []
    for low in range(0, head + 1, EXPORT_CHUNK_BLOCKS):
        high = min(low + EXPORT_CHUNK_BLOCKS - 1, head)
        rows.extend(event.as_json() for event in account_history(chain, owner, low, high))
        if len(rows) > EXPORT_ROWS_MAX:
            raise ValueError(f"more than {EXPORT_ROWS_MAX} rows: use `fee-node history` with --from/--to")
    return rows


def console_routes(api):
    """Routes for HttpServer: the page, its assets and the history export."""

    async def page(request, server):
        if request.path == "/console":
            raise web.HTTPFound("/console/")
        return web.Response(body=_asset("index.html"), content_type="text/html")

    async def static(request, server):
        name = request.match_info["name"]
        if name not in STATIC:
            raise web.HTTPNotFound()
        return web.Response(body=_asset(name), content_type=STATIC[name])

    async def export(request, server):
        address, fmt = request.match_info["address"], request.match_info["fmt"]
        if not _ADDRESS.match(address) or not is_address(address) or fmt not in ("csv", "json"):
            raise web.HTTPBadRequest(text="use /console/export/<0x address>.csv or .json")
        try:
            rows = await server.run_blocking(export_rows, api.chain, to_canonical_address(address))
        except ValueError as err:
            raise web.HTTPRequestEntityTooLarge(max_size=EXPORT_ROWS_MAX, actual_size=0, text=str(err))
        out = io.StringIO()
        emit_rows(rows, fmt, out)
        return web.Response(
            body=out.getvalue().encode(),
            content_type="text/csv" if fmt == "csv" else "application/json",
            headers={"Content-Disposition": f'attachment; filename="history-{address}.{fmt}"'})

    return [("GET", "/console", page), ("GET", "/console/", page),
            ("GET", "/console/static/{name}", static),
            ("GET", "/console/export/{address}.{fmt}", export)]
