"""The console in a real browser (Playwright driving Debian's Chromium) against a real
`fee-node run` with a scripted history: the numbers equal fee_getAccount, the charts carry
the lots' points, the export equals `fee-node history`, a status change caused by a
transaction and an expiry with no transaction both appear without a reload."""
import shutil
import subprocess
import sys

import pytest
from eth_account import Account
from web3 import Web3

from fee_plugin.artifact import vault_abi

from .support.scripted import (
    OTHER,
    USER,
    VALIDITY_SECONDS,
    WAIT_SECONDS,
    send,
    script_history,
    start_scripted_node,
    wait_for_head_time,
)

pytestmark = pytest.mark.slow
playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OPERATOR_KEY = b"\x02" * 32
VAULT = "0x000000000000000000000000000000000000fee0"


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    running = start_scripted_node(tmp_path_factory.mktemp("console"))
    try:
        script_history(running)
        yield running
    finally:
        assert running.stop() == 0


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


def test_account_numbers_equal_fee_get_account(node, page):
    open_account(page, node, USER)
    block = int(page.text_content("p.muted").split("block ")[1].split()[0])
    account = node.rpc("fee_getAccount", USER.address, hex(block))["result"]
    assert page.text_content("[data-testid=account-status]") == account["status"]
    assert page.text_content("[data-testid=available-wei]") == account["available"]
    assert page.text_content("[data-testid=audit]") == "reconciled"
    for field in ("deposited", "charged", "expired", "remaining"):
        shown = page.text_content(f"[data-testid={field}]")
        assert int(round(float(shown) * 10**8)) == int(account[field]) // 10**10, field


def test_each_lot_chart_carries_its_points(node, page):
    open_account(page, node, USER)
    history = node.rpc("fee_getHistory", USER.address, "0x0", "latest")["result"]
    for lot in (0, 1):
        chart = page.locator(f"[data-testid=lot-chart-{lot}]")
        used = chart.locator("circle[data-series=used]").evaluate_all("els => els.map(e => e.dataset.value)")
        charges = [int(e["amount"]) for e in history if e["event"] == "LotCharged" and int(e["lot"]) == lot]
        cumulative = [sum(charges[:i]) for i in range(len(charges) + 1)]
        assert set(map(int, used)) == set(cumulative)
        assert int(chart.get_attribute("data-points")) == len(used)
        assert chart.locator("[data-testid=expiry]").count() == 1


def test_export_downloads_the_rows_fee_node_history_prints(node, page, tmp_path):
    open_account(page, node, USER)
    with page.expect_download() as download:
        page.click("[data-testid=export-csv]")
    exported = tmp_path / "export.csv"
    download.value.save_as(exported)
    printed = subprocess.run(
        [sys.executable, "-m", "fee_plugin.node.cli", "history", USER.address, "--rpc", node.url, "--format", "csv"],
        capture_output=True, timeout=60, check=True).stdout
    assert exported.read_bytes() == printed and printed.count(b"\n") > 5


def test_status_change_by_a_transaction_appears_without_reload(node, page):
    open_account(page, node, USER)
    assert page.text_content("[data-testid=account-status]") != "FROZEN"
    operator = Account.from_key(OPERATOR_KEY)
    vault = node.w3.eth.contract(address=Web3.to_checksum_address(VAULT), abi=vault_abi())
    send(node.w3, operator, to=vault.address, data=vault.encode_abi("freeze", [USER.address]), gas=300_000)
    page.wait_for_selector("[data-testid=account-status]:text-is('FROZEN')", timeout=WAIT_SECONDS * 1000)


def test_expiry_with_no_transaction_shows_as_expired(node, page):
    open_account(page, node, OTHER)
    assert page.text_content("[data-testid=account-status]") in ("ACTIVE", "LOW")
    lots = node.rpc("fee_getAccount", OTHER.address)["result"]["lots"]
    wait_for_head_time(node, max(lot["expiry"] for lot in lots), timeout=VALIDITY_SECONDS + WAIT_SECONDS)
    page.wait_for_selector("[data-testid=account-status]:text-is('EXPIRED')", timeout=WAIT_SECONDS * 1000)


def test_chain_page_lists_accounts_about_to_change(node, page):
    page.goto(f"{node.url}/console/#/chain")
    page.wait_for_selector("[data-testid=fees-chart]", timeout=WAIT_SECONDS * 1000)
    head = int(page.text_content("[data-testid=chain-head]"))
    assert head >= int(node.w3.eth.block_number) - 5
    assert int(page.get_attribute("[data-testid=fees-chart]", "data-points")) >= 1
    assert USER.address.lower() in page.text_content("[data-testid=top-payers]").lower()
