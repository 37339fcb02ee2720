// fee-node console: a read-only view over the node's own JSON-RPC (same origin).
// Pages: #/chain and #/account/<address>. Amounts arrive in wei as decimal strings and are
// handled as BigInt; they are shown in ether to 8 decimals, with the exact wei in each
// element's data-wei and title. Charts are SVG drawn here (points carry data-* attributes).
"use strict";

const ETHER = 10n ** 18n;
const POLL_MS = 2000;
const HISTORY_PAGE = 500;
const SVGNS = "http://www.w3.org/2000/svg";
let rpcId = 0;
let lastHead = null;
let refresh = null;  // re-renders the current page with fresh data

async function rpc(method, ...params) {
  const reply = await fetch("/", {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({jsonrpc: "2.0", id: ++rpcId, method, params}),
  }).then((r) => r.json());
  if (reply.error) throw new Error(`${method}: ${reply.error.message}`);
  return reply.result;
}

function ether(wei, digits = 8) {
  const v = BigInt(wei);
  const whole = v / ETHER, frac = (v % ETHER).toString().padStart(18, "0").slice(0, digits).replace(/0+$/, "");
  return frac ? `${whole}.${frac}` : `${whole}`;
}

// An amount in ether (8 decimals) carrying its exact value: data-wei and a title.
function amount(wei, attrs = {}) {
  return el("span", {...attrs, "data-wei": String(wei), title: `${ether(wei, 18)} ETH = ${wei} wei`}, ether(wei));
}

function when(t) { return new Date(Number(t) * 1000).toISOString().replace(".000Z", "Z"); }

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function card(label, value, id) {
  return el("div", {class: "card"}, el("div", {class: "label"}, label),
            el("div", {class: "value", "data-testid": id}, value));
}

function weiCard(label, wei, id) {
  return el("div", {class: "card"}, el("div", {class: "label"}, label),
            amount(wei, {class: "value", "data-testid": id}));
}

function statusBadge(status, id) { return el("span", {class: `status ${status}`, "data-testid": id}, status); }

function table(headers, rows, id) {
  const t = el("table", {"data-testid": id});
  t.append(el("tr", {}, ...headers.map(([h, cls]) => el("th", {class: cls || ""}, h))));
  for (const r of rows) t.append(el("tr", {}, ...r.map((c, i) => el("td", {class: headers[i][1] || ""}, c))));
  return t;
}

// -- charts -----------------------------------------------------------------------------

// The vertices of one series through the points (start, each charge, now, expiry): release
// is linear in time between them, used steps up at each charge, and available is their
// difference, so it climbs with release up to the expiry and only then drops to 0.
function vertices(points, key) {
  const out = [[points[0].t, BigInt(points[0][key])]];
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1], b = points[i];
    if (key === "used") out.push([b.t, BigInt(a.used)]);
    if (key === "available") {
      const before = BigInt(b.released) - BigInt(a.used);
      out.push([b.t, before > 0n ? before : 0n]);
    }
    out.push([b.t, BigInt(b[key])]);
  }
  return out;
}

function lotChart(series) {
  const W = 360, H = 180, P = 28;
  const t0 = series.start, t1 = series.expiry, max = Number(series.amount) || 1;
  const x = (t) => P + (W - 2 * P) * (Number(t) - t0) / Math.max(1, t1 - t0);
  const y = (wei) => H - P - (H - 2 * P) * Number(wei) / max;
  const chart = svg("svg", {class: "chart", width: W, height: H, viewBox: `0 0 ${W} ${H}`,
                            "data-testid": `lot-chart-${series.lot}`, "data-points": series.points.length,
                            "data-amount": series.amount, "data-start": t0, "data-expiry": t1, "data-now": series.now});
  chart.append(svg("line", {x1: P, y1: H - P, x2: W - P, y2: H - P, stroke: "#9ca3af"}));
  for (const key of ["released", "used", "available"]) {
    const all = vertices(series.points, key);
    const past = all.filter(([t]) => t <= series.now), future = all.filter(([t]) => t >= series.now);
    for (const [part, dash] of [[past, ""], [future, "5 4"]]) {  // what is yet to come: dashed
      if (part.length < 2) continue;
      // released is drawn wider, under the others: where nothing was used, available covers it
      const line = svg("polyline", {class: key, fill: "none", "stroke-width": key === "released" ? 4 : 2,
                                    "stroke-opacity": key === "released" ? 0.45 : 1, "stroke-dasharray": dash,
                                    points: part.map(([t, wei]) => `${x(t)},${y(wei)}`).join(" ")});
      line.dataset.series = key;
      chart.append(line);
    }
    for (const p of series.points) {
      const dot = svg("circle", {class: key, cx: x(p.t), cy: y(p[key]), r: 2, fill: "currentColor"});
      dot.dataset.t = p.t; dot.dataset.value = p[key]; dot.dataset.series = key;
      chart.append(dot);
    }
  }
  chart.append(svg("line", {class: "expiry", x1: x(t1), x2: x(t1), y1: P / 2, y2: H - P, "data-testid": "expiry"}));
  if (series.now < t1) chart.append(svg("line", {class: "now", x1: x(series.now), x2: x(series.now), y1: P / 2, y2: H - P}));
  const label = svg("text", {x: W - P, y: P / 2 + 4, "text-anchor": "end", "font-size": 10, fill: "#6b7280"});
  label.textContent = `expiry ${when(t1)}`;
  chart.append(label);
  return chart;
}

function feesChart(blocks) {
  const W = 760, H = 160, P = 24;
  const fees = blocks.map((b) => Number(BigInt(b.fees) / 10n ** 9n));
  const max = Math.max(1, ...fees), step = (W - 2 * P) / Math.max(1, blocks.length);
  const chart = svg("svg", {class: "chart", width: W, height: H, "data-testid": "fees-chart", "data-points": blocks.length});
  blocks.forEach((b, i) => {
    const h = (H - 2 * P) * fees[i] / max;
    const bar = svg("rect", {class: "bar", x: P + i * step, y: H - P - h, width: Math.max(1, step - 1), height: h});
    bar.dataset.block = b.number; bar.dataset.fees = b.fees;
    chart.append(bar);
  });
  return chart;
}

function legend() {
  return el("div", {class: "legend"},
    el("span", {}, el("i", {style: "background:#2563eb"}), "released"),
    el("span", {}, el("i", {style: "background:#dc2626"}), "used"),
    el("span", {}, el("i", {style: "background:#059669"}), "available"),
    el("span", {}, el("i", {style: "background:#6b7280"}), "expiry"));
}

// -- pages ------------------------------------------------------------------------------

async function chainPage(view) {
  const horizon = document.getElementById("horizon")?.value || "86400";
  const [summary, watch] = await Promise.all([rpc("fee_getChainSummary", 100), rpc("fee_getWatchList", Number(horizon), 100)]);
  const counts = summary.accounts || {};
  const select = el("select", {id: "horizon"}, ...[["3600", "1 hour"], ["86400", "1 day"], ["604800", "7 days"], ["2592000", "30 days"]]
    .map(([v, l]) => { const o = el("option", {value: v}, l); if (v === horizon) o.selected = true; return o; }));
  select.addEventListener("change", () => refresh());
  view.replaceChildren(
    el("h2", {}, "Chain"),
    el("div", {class: "cards"},
      card("head block", summary.head, "chain-head"), card("head time", when(summary.timestamp), "chain-time"),
      card("blocks / minute", summary.blocksPerMinute ?? "–", "block-rate"),
      weiCard("treasury income (window, ETH)", summary.treasury.incomeWei, "treasury-income"),
      weiCard("treasury balance (ETH)", summary.treasury.balanceWei, "treasury-balance"),
      ...Object.entries(counts).map(([s, n]) => card(`accounts ${s}`, n, `count-${s}`))),
    el("h3", {}, `Fees per block (last ${summary.blocks.length} blocks, gwei)`), feesChart(summary.blocks),
    el("h3", {}, "Top payers in the window"),
    table([["account"], ["fees (ETH)", "num"]], summary.topPayers.map((p) => [accountLink(p.address), amount(p.fees)]), "top-payers"),
    el("h3", {}, "Accounts LOW, EXHAUSTED or EXPIRED now or within ", select),
    table([["account"], ["now"], ["becomes"], ["at (block time)"]],
          watch.map((w) => w.status === w.statusNow  // already there: nothing more to come
            ? [accountLink(w.address), statusBadge(w.statusNow), el("span", {class: "muted"}, "–"), "now"]
            : [accountLink(w.address), statusBadge(w.statusNow), statusBadge(w.status), when(w.at)]), "watch-list"));
}

function accountLink(address) { return el("a", {href: `#/account/${address}`}, address); }

async function fullHistory(address) {
  const events = [];
  let from = 0;
  for (;;) {
    const page = await rpc("fee_getHistoryPage", address, {fromBlock: from, limit: HISTORY_PAGE});
    events.push(...page.events);
    if (page.nextBlock === null) return events;
    from = page.nextBlock;
  }
}

function reconcile(account, events) {
  const sum = (name, field) => events.filter((e) => e.event === name).reduce((a, e) => a + BigInt(e[field]), 0n);
  const deposited = sum("LotDeposited", "amount"), charged = sum("FeeCharged", "fee"), expired = sum("LotExpired", "remainder");
  const ok = deposited === BigInt(account.deposited) && charged === BigInt(account.charged) && expired === BigInt(account.expired)
    && BigInt(account.deposited) === BigInt(account.charged) + BigInt(account.expired) + BigInt(account.remaining);
  return {ok, deposited, charged, expired};
}

async function accountPage(view, address) {
  const account = await rpc("fee_getAccount", address, "latest");
  const [events, series] = await Promise.all([
    fullHistory(address), Promise.all(account.lots.map((lot) => rpc("fee_getLotSeries", address, lot.lot)))]);
  const audit = reconcile(account, events);
  view.replaceChildren(
    el("h2", {}, "Account ", el("code", {"data-testid": "account-address"}, account.address), " ", statusBadge(account.status, "account-status")),
    el("p", {class: "muted", "data-testid": "as-of", "data-block": account.blockNumber, "data-timestamp": account.timestamp},
       `as of block ${account.blockNumber} (${when(account.timestamp)})`),
    el("div", {class: "cards"},
      weiCard("available now (ETH)", account.available, "available"),
      weiCard("deposited (ETH)", account.deposited, "deposited"), weiCard("charged (ETH)", account.charged, "charged"),
      weiCard("expired to treasury (ETH)", account.expired, "expired"),
      weiCard("remaining in lots (ETH)", account.remaining, "remaining"),
      card("audit", audit.ok ? "reconciled" : "does NOT reconcile", "audit")),
    el("h3", {}, "Lots"), legend(),
    el("div", {class: "lots"}, ...account.lots.map((lot, i) => el("div", {},
      el("div", {"data-testid": `lot-${lot.lot}`}, `lot ${lot.lot}: `, amount(lot.amount, {"data-field": "amount"}),
         " ETH, used ", amount(lot.used, {"data-field": "used"}),
         ", available ", amount(lot.available, {"data-field": "available"}), lot.expired ? " (expired)" : ""),
      lotChart(series[i])))),
    el("h3", {}, `History (${events.length} events) `,
      el("a", {href: `/console/export/${account.address}.csv`, download: "", "data-testid": "export-csv"}, "CSV"), " ",
      el("a", {href: `/console/export/${account.address}.json`, download: "", "data-testid": "export-json"}, "JSON")),
    table([["block", "num"], ["time"], ["event"], ["lot", "num"], ["amount (ETH)", "num"], ["tx"]],
          events.slice().reverse().map((e) => [e.blockNumber, when(e.timestamp), e.event, e.lot ?? "",
            amount(e.amount ?? e.fee ?? e.remainder ?? 0), e.transactionHash.slice(0, 12) + "…"]), "history"));
}

// -- routing and live updates ---------------------------------------------------------

async function route() {
  const view = document.getElementById("view");
  const match = location.hash.match(/^#\/account\/(0x[0-9a-fA-F]{40})$/);
  refresh = match ? () => accountPage(view, match[1]) : () => chainPage(view);
  try { await refresh(); } catch (err) { view.replaceChildren(el("p", {class: "error", "data-testid": "error"}, err.message)); }
}

async function poll() {
  try {
    const head = parseInt(await rpc("eth_blockNumber"), 16);
    document.getElementById("head").textContent = `head #${head}`;
    if (lastHead !== null && head !== lastHead && refresh) await refresh();
    lastHead = head;
  } catch (err) { document.getElementById("head").textContent = "node unreachable"; }
  setTimeout(poll, POLL_MS);
}

document.getElementById("search").addEventListener("submit", (event) => {
  event.preventDefault();
  const address = document.getElementById("search-address").value.trim();
  location.hash = `#/account/${address}`;
});
window.addEventListener("hashchange", route);
if (!location.hash) location.hash = "#/chain"; else route();
poll();
