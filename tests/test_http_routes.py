"""The node's HTTP routes over real HTTP: /metrics in Prometheus's text format (on the RPC
port, and on --metrics-port alone), the console and its assets behind the RPC's own
virtual-host and CORS rules, --no-console. In-process servers are wired by run.py's own
`observe` and `http_servers`; the flags are tested on `fee-node run` subprocesses."""
import asyncio
import http.client
import json
import time
from urllib.parse import urlsplit

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fee_plugin.node.metrics import CONTENT_TYPE
from fee_plugin.node.rpc import RpcApi
from fee_plugin.node.rpc.cors import AccessRules
from fee_plugin.node.run import http_servers, observe

from .support.chain import USER_KEYS, address
from .support.node_process import EXAMPLE_GENESIS, NodeProcess
from .support.nodes import clocked_node, deposit

ALICE = USER_KEYS[0]
OWNER = "0x" + address(ALICE).hex()
ALLOWED_ORIGIN = "http://allowed.example"
FOREIGN_HOST = "evil.example"
WAIT_SECONDS = 10
FAMILIES = {  # every family metrics.py registers outside cluster mode -> its type
    "fee_node_head_block_number": "gauge", "fee_node_head_block_timestamp_seconds": "gauge",
    "fee_node_blocks": "counter", "fee_node_transactions": "counter", "fee_node_fees_charged_wei": "counter",
    "fee_node_transactions_rejected": "counter", "fee_node_txpool_transactions": "gauge",
    "fee_node_accounts": "gauge", "fee_node_lots_expired": "counter", "fee_node_swept_to_treasury_wei": "counter",
    "fee_node_block_seconds": "histogram", "fee_node_rpc_requests": "counter", "fee_node_ws_subscribers": "gauge",
}


def request(url: str, path: str = "/", method: str = "GET", body=None, headers=None):
    """(status, headers, body) of one HTTP request; `headers` may set Host and Origin."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=WAIT_SECONDS)
    try:
        data = json.dumps(body).encode() if body is not None else None
        sent = dict(headers or {})
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def rpc_body(method: str, *params):
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}


def scrape(url: str, path: str = "/metrics", headers=None):
    status, response_headers, body = request(url, path, headers=headers)
    assert status == 200, body
    assert response_headers["Content-Type"] == CONTENT_TYPE
    samples = {}
    families = {}
    for family in text_string_to_metric_families(body.decode()):
        families[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return families, samples


@pytest.fixture
def served():
    """A node with one deposit, served as `fee-node run` wires it (console on, a CORS
    origin allowed, /metrics on a second port too)."""
    node, clock = clocked_node()
    api = RpcApi(node)
    metrics = observe(node, api)
    deposit(node, clock, ALICE)
    servers = http_servers(api, metrics, "127.0.0.1", 0, access=AccessRules(cors_origins=(ALLOWED_ORIGIN,)),
                           metrics_port=0)
    for server in servers:
        server.start()
    yield node, servers[0], servers[1]
    for server in servers:
        server.stop()


def console_paths():
    return ["/console", "/console/", "/console/static/console.js", "/console/static/console.css",
            f"/console/export/{OWNER}.csv", f"/console/export/{OWNER}.json"]


# -- /metrics -----------------------------------------------------------------------------


def test_metrics_is_prometheus_text_with_every_family(served):
    node, rpc, _ = served
    status, _, body = request(rpc.url, "/", "POST", rpc_body("eth_chainId"))
    assert status == 200 and json.loads(body)["result"] == "0x539"
    families, samples = scrape(rpc.url)
    assert {name: families.get(name) for name in FAMILIES} == FAMILIES
    assert not any(name.startswith("fee_node_cluster_") for name in families)  # not in cluster mode
    assert samples[("fee_node_head_block_number", ())] == node.chain.get_canonical_head().block_number == 1
    assert samples[("fee_node_blocks_total", (("source", "produced"),))] == 1
    assert samples[("fee_node_accounts", (("status", "ACTIVE"),))] == 1
    assert samples[("fee_node_rpc_requests_total", (("code", "0"), ("method", "eth_chainId")))] == 1
    assert samples[("fee_node_ws_subscribers", ())] == 0


def test_ws_subscribers_gauge_counts_open_subscriptions(served):
    _, rpc, _ = served

    def subscribers():
        return scrape(rpc.url)[1][("fee_node_ws_subscribers", ())]

    async def scenario():
        async with aiohttp.ClientSession() as session, session.ws_connect(rpc.ws_url) as ws:
            for kind in ("newHeads", "newPendingTransactions"):
                await ws.send_json(rpc_body("eth_subscribe", kind))
                assert "result" in await asyncio.wait_for(ws.receive_json(), WAIT_SECONDS)
            assert await asyncio.to_thread(subscribers) == 2
        deadline = time.monotonic() + WAIT_SECONDS  # the server sees the close on its own loop
        while await asyncio.to_thread(subscribers) != 0:
            assert time.monotonic() < deadline, "subscriptions still counted after the close"
            await asyncio.sleep(0.05)

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_metrics_port_serves_metrics_only_and_the_rpc_port_still_does(served):
    _, rpc, metrics_server = served
    assert metrics_server.port != rpc.port
    families, _ = scrape(metrics_server.url)
    assert set(FAMILIES) <= set(families)
    scrape(rpc.url)  # README: /metrics on the RPC port, and on --metrics-port too
    status, _, _ = request(metrics_server.url, "/", "POST", rpc_body("eth_chainId"))
    assert status in (404, 405)  # no JSON-RPC there
    for path in console_paths():
        assert request(metrics_server.url, path)[0] == 404, path  # nor the console


# -- the console follows the RPC's access rules -------------------------------------------


def test_console_is_served_with_its_assets(served):
    _, rpc, _ = served
    status, headers, _ = request(rpc.url, "/console")
    assert status == 302 and headers["Location"] == "/console/"
    expected = {"/console/": "text/html", "/console/static/console.js": "application/javascript",
                "/console/static/console.css": "text/css"}
    for path, content_type in expected.items():
        status, headers, body = request(rpc.url, path)
        assert status == 200 and headers["Content-Type"].startswith(content_type) and body, path
    assert request(rpc.url, "/console/static/../../run.py")[0] == 404
    assert request(rpc.url, "/console/static/nope.js")[0] == 404
    status, headers, body = request(rpc.url, console_paths()[-1])
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    history = json.loads(request(rpc.url, "/", "POST", rpc_body("fee_getHistory", OWNER))[2])
    assert json.loads(body) == history["result"] and "LotDeposited" in {row["event"] for row in history["result"]}


def test_console_refuses_a_foreign_host_like_the_rpc(served):
    _, rpc, _ = served
    foreign = {"Host": FOREIGN_HOST}
    status, _, body = request(rpc.url, "/", "POST", rpc_body("eth_chainId"), headers=foreign)
    assert (status, body) == (403, b"invalid host specified\n")
    for path in console_paths() + ["/metrics"]:
        status, _, body = request(rpc.url, path, headers=foreign)
        assert (status, body) == (403, b"invalid host specified\n"), path
        assert request(rpc.url, path, headers={"Host": f"localhost:{rpc.port}"})[0] in (200, 302), path


def test_console_answers_cors_like_the_rpc(served):
    _, rpc, _ = served

    def cors(path, method="GET", origin=ALLOWED_ORIGIN, **more):
        headers = {"Origin": origin, **more.pop("headers", {})}
        status, response, _ = request(rpc.url, path, method, headers=headers, **more)
        return status, response.get("Access-Control-Allow-Origin"), response.get("Vary")

    rpc_allowed = cors("/", "POST", body=rpc_body("eth_chainId"))
    assert rpc_allowed == (200, ALLOWED_ORIGIN, "Origin")
    rpc_refused = cors("/", "POST", origin="http://other.example", body=rpc_body("eth_chainId"))
    assert rpc_refused[1] is None
    for path in console_paths()[1:]:
        assert cors(path)[1:] == rpc_allowed[1:], path
        assert cors(path, origin="http://other.example")[1] is None, path
    preflight = {"Access-Control-Request-Method": "GET"}
    assert cors("/", "OPTIONS", headers=preflight)[:2] == (204, ALLOWED_ORIGIN)
    assert cors("/console/", "OPTIONS", headers=preflight)[:2] == (204, ALLOWED_ORIGIN)
    assert cors("/console/", "OPTIONS", origin="http://other.example", headers=preflight)[:2] == (204, None)


# -- the flags, on `fee-node run` ----------------------------------------------------------

@pytest.mark.slow

def test_fee_node_run_metrics_port():
    node = NodeProcess(EXAMPLE_GENESIS, extra=["--metrics-port", "0"])
    try:
        assert node.metrics_url and node.metrics_url.endswith("/metrics")
        metrics_base = node.metrics_url[: -len("/metrics")]
        assert urlsplit(metrics_base).port != urlsplit(node.url).port
        families, samples = scrape(metrics_base)
        assert set(FAMILIES) <= set(families)
        assert samples[("fee_node_head_block_number", ())] == int(node.rpc("eth_blockNumber")["result"], 16)
        scrape(node.url)  # the RPC port serves /metrics as well
        assert request(metrics_base, "/", "POST", rpc_body("eth_chainId"))[0] in (404, 405)
        assert request(metrics_base, "/console/")[0] == 404
        assert request(node.url, "/console/")[0] == 200  # the console is on by default
    finally:
        assert node.stop() == 0

@pytest.mark.slow

def test_fee_node_run_no_console():
    node = NodeProcess(EXAMPLE_GENESIS, extra=["--no-console"])
    try:
        assert node.metrics_url is None
        for path in console_paths():
            assert request(node.url, path)[0] == 404, path
        scrape(node.url)
        assert node.rpc("eth_chainId")["result"] == "0x539"
    finally:
        assert node.stop() == 0

@pytest.mark.slow

def test_fee_node_run_vhost_and_cors_flags_cover_the_console():
    node = NodeProcess(EXAMPLE_GENESIS, extra=["--http-vhosts", "node.example",
                                               "--http-corsdomain", ALLOWED_ORIGIN])
    try:
        port = urlsplit(node.url).port
        for host, want in ((f"node.example:{port}", 200), (f"localhost:{port}", 403), (FOREIGN_HOST, 403),
                           (f"127.0.0.1:{port}", 200)):
            assert request(node.url, "/", "POST", rpc_body("eth_chainId"), headers={"Host": host})[0] == want, host
            for path in ("/console/", "/console/static/console.js", "/metrics"):
                assert request(node.url, path, headers={"Host": host})[0] == want, (host, path)
        for path in ("/console/", "/console/static/console.js"):
            _, headers, _ = request(node.url, path, headers={"Origin": ALLOWED_ORIGIN})
            assert headers.get("Access-Control-Allow-Origin") == ALLOWED_ORIGIN, path
            _, headers, _ = request(node.url, path, headers={"Origin": "http://other.example"})
            assert headers.get("Access-Control-Allow-Origin") is None, path
    finally:
        assert node.stop() == 0


def test_host_rules_answer_per_rule_set_and_per_host():
    """The host check is memoised by (host, vhosts): one rule set's answer never leaks into
    another's, and an IP literal always passes, as in geth."""
    only_a, only_b = AccessRules(vhosts=("node-a.example",)), AccessRules(vhosts=("node-b.example",))
    for _ in range(2):  # the second round answers from the memo
        assert only_a.host_allowed("node-a.example:8545") and not only_b.host_allowed("node-a.example:8545")
        assert only_b.host_allowed("NODE-B.example") and not only_a.host_allowed("node-b.example")
        assert only_a.host_allowed("127.0.0.1:8545") and only_b.host_allowed("[::1]:8545")
        assert not only_a.host_allowed("evil.example")
    assert AccessRules(vhosts=("*",)).host_allowed("evil.example")
