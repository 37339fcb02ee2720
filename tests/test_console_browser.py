"""The console in a real browser (Playwright driving Debian's Chromium) against a real
`fee-node run` with a scripted history (deposits, charges, an expiry): the numbers equal
fee_getAccount to the wei, the charts carry the lots' released, used and available points,
both exports equal `fee-node history`, a status change caused by a transaction and an
expiry with no transaction both appear without a reload."""
import json
import shutil
import subprocess
import sys

import pytest
from eth_account import Account

from fee_plugin.genesis import load_genesis
from fee_plugin.lots import Lot, released

from .support.scripted import (
    ETHER,
    GRANT_WEI,
    OPERATOR,
    OTHER,
    USER,
    WAIT_SECONDS,
    grant,
    script_history,
    send,
    start_scripted_node,
    vault_contract,
    wait_for_head_time,
)

pytestmark = pytest.mark.slow
playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
THIRD = Account.from_key(b"\x04" * 32)  # holds no ether and never sends a transaction
EXPIRY_SECONDS = 10  # the validity of THIRD's grant: long enough to open the page before it lapses
AMOUNTS = ("available", "deposited", "charged", "expired", "remaining")

# Everything the account page shows, read in one go: the page re-renders whenever the head
# moves (every second here), so separate reads could mix two renders.
SNAPSHOT = """() => {
  const q = (sel) => document.querySelector(sel);
  const asOf = q("[data-testid=as-of]");
  const field = (id) => { const e = q(`[data-testid=${id}]`); return {wei: e.dataset.wei, text: e.textContent}; };
  const lots = [...document.querySelectorAll("div[data-testid^='lot-']")].map((div) => ({
    lot: Number(div.dataset.testid.slice(4)),
    ...Object.fromEntries([...div.querySelectorAll("[data-field]")].map((e) => [e.dataset.field, e.dataset.wei])),
  }));
  const charts = [...document.querySelectorAll("svg[data-testid^='lot-chart-']")].map((svg) => {
    const series = (key) => [...svg.querySelectorAll(`circle[data-series=${key}]`)];
    const used = series("used"), rel = series("released"), avail = series("available");
    return {
      lot: Number(svg.dataset.testid.slice(10)), amount: svg.dataset.amount, start: Number(svg.dataset.start),
      expiry: Number(svg.dataset.expiry), now: Number(svg.dataset.now), declared: Number(svg.dataset.points),
      expiryMarks: svg.querySelectorAll("[data-testid=expiry]").length,
      aligned: used.every((c, i) => c.dataset.t === rel[i]?.dataset.t && c.dataset.t === avail[i]?.dataset.t)
        && rel.length === used.length && avail.length === used.length,
      points: used.map((c, i) => ({t: Number(c.dataset.t), released: rel[i]?.dataset.value, used: c.dataset.value,
                                    available: avail[i]?.dataset.value})),
    };
  });
  const history = [...document.querySelectorAll("[data-testid=history] tr")].slice(1).map((tr) => {
    const td = tr.querySelectorAll("td");
    return {block: Number(td[0].textContent), event: td[2].textContent, lot: td[3].textContent,
            wei: td[4].querySelector("[data-wei]").dataset.wei, text: td[4].textContent};
  });
  return {block: Number(asOf.dataset.block), timestamp: Number(asOf.dataset.timestamp),
          status: q("[data-testid=account-status]").textContent, audit: q("[data-testid=audit]").textContent,
          amounts: Object.fromEntries(["available", "deposited", "charged", "expired", "remaining"].map((f) => [f, field(f)])),
          lots, charts, history};
}"""


@pytest.fixture(scope="module")
def scripted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("console")
    running = start_scripted_node(tmp)
    try:
        script_history(running)
        yield running, load_genesis(str(tmp / "genesis.json")).fee.release_policy
    finally:
        assert running.stop() == 0


@pytest.fixture(scope="module")
def node(scripted):
    return scripted[0]


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def open_account(page, node, account):
    page.goto(f"{node.url}/console/#/account/{account.address}")
    page.wait_for_selector("[data-testid=account-status]", timeout=WAIT_SECONDS * 1000)
    return page.evaluate(SNAPSHOT)


def shown_ether(wei: int) -> str:
    """What the page prints for `wei`: ether cut (not rounded) to 8 decimals."""
    whole, frac = divmod(wei, ETHER)
    frac_text = f"{frac:018d}"[:8].rstrip("0")
    return f"{whole}.{frac_text}" if frac_text else str(whole)


def block_at_time(node, timestamp: int) -> int:
    """The block stamped `timestamp` (block times strictly increase, one block a second)."""
    number = node.w3.eth.block_number
    while node.w3.eth.get_block(number)["timestamp"] > timestamp:
        number -= 1
    assert node.w3.eth.get_block(number)["timestamp"] == timestamp
    return number


def without_now(points, now, expiry):
    """A series' points but the one at "now" (next to last while the lot runs), which
    moves with the head; the others (start, each charge, expiry) are fixed."""
    return points[:-2] + points[-1:] if now < expiry else list(points)


def test_account_numbers_equal_fee_get_account(node, page):
    shown = open_account(page, node, USER)
    account = node.rpc("fee_getAccount", USER.address, hex(shown["block"]))["result"]
    assert shown["timestamp"] == account["timestamp"]
    assert shown["status"] == account["status"]
    assert shown["audit"] == "reconciled"
    for field in AMOUNTS:
        assert shown["amounts"][field]["wei"] == account[field], field
        assert shown["amounts"][field]["text"] == shown_ether(int(account[field])), field
    assert account["expired"] == str(GRANT_WEI)  # the lapsed grant, swept to the treasury
    assert int(account["charged"]) > 0
    assert shown["lots"] == [{"lot": lot["lot"], "amount": lot["amount"], "used": lot["used"],
                              "available": lot["available"]} for lot in account["lots"]]
    assert len(shown["lots"]) == 2


def test_history_table_lists_every_event_to_the_wei(node, page):
    shown = open_account(page, node, USER)
    history = node.rpc("fee_getHistory", USER.address, "0x0", hex(shown["block"]))["result"]
    expected = [{"block": e["blockNumber"], "event": e["event"], "lot": str(e.get("lot", "")),
                 "wei": str(e.get("amount", e.get("fee", e.get("remainder", 0))))} for e in reversed(history)]
    assert [{k: row[k] for k in ("block", "event", "lot", "wei")} for row in shown["history"]] == expected
    assert all(row["text"] == shown_ether(int(row["wei"])) for row in shown["history"])
    assert {"LotDeposited", "LotCharged", "FeeCharged", "LotExpired"} <= {row["event"] for row in shown["history"]}


def test_each_lot_chart_carries_its_points(scripted, page):
    node, policy = scripted
    shown = open_account(page, node, USER)
    account = node.rpc("fee_getAccount", USER.address, hex(shown["block"]))["result"]
    history = node.rpc("fee_getHistory", USER.address, "0x0", hex(shown["block"]))["result"]
    assert [chart["lot"] for chart in shown["charts"]] == [lot["lot"] for lot in account["lots"]]
    for chart, lot in zip(shown["charts"], account["lots"]):
        assert chart["aligned"] and chart["expiryMarks"] == 1
        assert chart["declared"] == len(chart["points"])
        assert (chart["amount"], chart["start"], chart["expiry"]) == (lot["amount"], lot["start"], lot["expiry"])
        # The page plots exactly what fee_getLotSeries answers (but "now", which moves).
        series = node.rpc("fee_getLotSeries", USER.address, lot["lot"])["result"]
        assert without_now(chart["points"], chart["now"], chart["expiry"]) == \
            without_now(series["points"], series["now"], series["expiry"])
        # ...and the points are the lot's own: used is the running sum of its charges,
        # released what the lot had released at that time, available their difference.
        charges = [int(e["amount"]) for e in history if e["event"] == "LotCharged" and int(e["lot"]) == lot["lot"]
                   and lot["start"] <= e["timestamp"] < lot["expiry"]]
        running = [sum(charges[:i]) for i in range(len(charges) + 1)]
        fixed = without_now(chart["points"], chart["now"], chart["expiry"])
        assert [int(p["used"]) for p in fixed] == running + [running[-1]]
        assert fixed[0]["t"] == lot["start"] and fixed[-1]["t"] == lot["expiry"]
        terms = Lot(lot["lot"], int(lot["amount"]), 0, lot["start"], lot["expiry"])
        for p in chart["points"]:
            assert int(p["released"]) == released(terms, p["t"], policy), p
            live = p["t"] < lot["expiry"]
            assert int(p["available"]) == (int(p["released"]) - int(p["used"]) if live else 0), p
        assert fixed[-1]["released"] == lot["amount"] and fixed[-1]["available"] == "0"
        # The "now" point is the lot as fee_getAccount shows it at that block.
        assert chart["now"] < chart["expiry"]
        now = chart["points"][-2]
        at_now = node.rpc("fee_getAccount", USER.address, hex(block_at_time(node, chart["now"])))["result"]
        (then,) = [each for each in at_now["lots"] if each["lot"] == lot["lot"]]
        assert (now["t"], now["released"], now["used"], now["available"]) == \
            (chart["now"], then["released"], then["used"], then["available"])


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_downloads_the_rows_fee_node_history_prints(node, page, tmp_path, fmt):
    open_account(page, node, USER)
    with page.expect_download() as download:
        page.click(f"[data-testid=export-{fmt}]")
    exported = tmp_path / f"export.{fmt}"
    download.value.save_as(exported)
    printed = subprocess.run(
        [sys.executable, "-m", "fee_plugin.node.cli", "history", USER.address, "--rpc", node.url, "--format", fmt],
        capture_output=True, timeout=60, check=True).stdout
    assert exported.read_bytes() == printed
    if fmt == "json":
        rows = json.loads(printed)
        assert rows == node.rpc("fee_getHistory", USER.address, "0x0", "latest")["result"]
        assert {"LotDeposited", "LotCharged", "FeeCharged", "LotExpired"} <= {row["event"] for row in rows}
    else:
        assert printed.count(b"\n") > 5 and b"LotExpired" in printed


def test_status_change_by_a_transaction_appears_without_reload(node, page):
    assert open_account(page, node, USER)["status"] != "FROZEN"
    vault = vault_contract(node.w3)
    send(node.w3, OPERATOR, to=vault.address, data=vault.encode_abi("freeze", [USER.address]), gas=300_000)
    page.wait_for_selector("[data-testid=account-status]:text-is('FROZEN')", timeout=WAIT_SECONDS * 1000)


def test_expiry_with_no_transaction_shows_as_expired(node, page):
    granted = grant(node.w3, THIRD, ETHER // 100, EXPIRY_SECONDS)
    (lot,) = node.rpc("fee_getAccount", THIRD.address, hex(granted["blockNumber"]))["result"]["lots"]
    before = open_account(page, node, THIRD)
    assert before["timestamp"] < lot["expiry"], "the page took longer to open than the lot is valid"
    assert before["status"] in ("ACTIVE", "LOW")
    wait_for_head_time(node, lot["expiry"], timeout=EXPIRY_SECONDS + WAIT_SECONDS)
    page.wait_for_selector("[data-testid=account-status]:text-is('EXPIRED')", timeout=WAIT_SECONDS * 1000)
    after = page.evaluate(SNAPSHOT)
    assert after["status"] == "EXPIRED" and after["timestamp"] >= lot["expiry"]
    assert after["amounts"]["remaining"]["wei"] == str(ETHER // 100)  # nothing swept: no transaction
    assert node.w3.eth.get_transaction_count(THIRD.address) == 0


def test_chain_page_lists_accounts_about_to_change(node, page):
    page.goto(f"{node.url}/console/#/chain")
    page.wait_for_selector("[data-testid=fees-chart]", timeout=WAIT_SECONDS * 1000)
    head = int(page.text_content("[data-testid=chain-head]"))
    assert head >= int(node.w3.eth.block_number) - 5
    assert int(page.get_attribute("[data-testid=fees-chart]", "data-points")) >= 1
    assert USER.address.lower() in page.text_content("[data-testid=top-payers]").lower()
    assert OTHER.address in page.text_content("[data-testid=watch-list]")  # LOW now, EXPIRED within the day
