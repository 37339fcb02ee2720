// A dapp developer's first session against a fee-node, with ethers v6 and default settings.
// Run by tests/test_ethers_e2e.py against a real `fee-node run`; prints one JSON report line
// (the last line of stdout) and exits non-zero on the first failed step.
//
// The main provider is `new JsonRpcProvider(url)` with no options: ethers' defaults, so
// requests made within 10 ms of each other go out as one JSON-RPC batch (up to 100), the
// network is detected from eth_chainId, and blocks, receipts and filters are polled every
// 4 s. Only the second 20-transaction burst uses `batchMaxCount: 1` (unbatched, as the issue
// asks for); the first burst, the reverts and the refusals go through the batching provider.
"use strict";
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { createRequire } = require("node:module");

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`missing environment variable ${name}`);
  return value;
};
const depsRequire = createRequire(path.join(env("FEE_JS_DEPS"), "package.json"));
const ethers = depsRequire("ethers");
const solc = depsRequire("solc");
const { compileToken } = require("./compile.cjs");

const RPC_URL = env("FEE_RPC_URL");
const WS_URL = env("FEE_WS_URL");
const VAULT = env("FEE_VAULT");
const VAULT_ABI = JSON.parse(fs.readFileSync(env("FEE_VAULT_ARTIFACT"), "utf8")).abi;
const EVM_VERSION = env("FEE_EVM_VERSION");
const DEV_KEY = "0x" + "01".repeat(32); // funded in the genesis; deposits, deploys, transfers
const NEWCOMER_KEY = "0x" + "03".repeat(32); // funded, never deposits before the refusal
const SMALL_KEY = "0x" + "07".repeat(32); // funded by the test; deposits a little
const BURST = 20;
// ethers' default polling is 4 s: a wait spans a poll or two plus the node's automine delay.
const STEP_TIMEOUT_MS = 30_000;
const report = { versions: { ethers: ethers.version, solc: solc.version(), node: process.version } };

process.on("unhandledRejection", (error) => {
  console.error("unhandled rejection:", error);
  process.exit(3);
});

function within(promise, what, ms = STEP_TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function until(check, what) {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// Counts the JSON-RPC methods a provider's subscribers have completed, so the script knows
// when eth_newFilter / eth_subscribe are in place before it makes events happen.
function recordSends(provider) {
  const done = {};
  const send = provider.send.bind(provider);
  provider.send = async (method, params) => {
    const result = await send(method, params);
    done[method] = (done[method] || 0) + 1;
    return result;
  };
  return done;
}

// Records what a JsonRpcProvider actually put on the wire: one entry per HTTP request, with
// the methods it carried and the error codes that came back for each of them.
function recordWire(provider) {
  const wire = [];
  const send = provider._send.bind(provider);
  provider._send = async (payload) => {
    const requests = Array.isArray(payload) ? payload : [payload];
    const entry = { batch: Array.isArray(payload), methods: requests.map((r) => r.method), errors: [] };
    wire.push(entry);
    const responses = await send(payload);
    const methodById = new Map(requests.map((r) => [r.id, r.method]));
    for (const response of responses) {
      if (response.error) entry.errors.push({ method: methodById.get(response.id), code: response.error.code });
    }
    return responses;
  };
  return wire;
}

function wireSummary(wire) {
  const batches = wire.filter((entry) => entry.batch);
  const methods = [...new Set(batches.flatMap((entry) => entry.methods))].sort();
  const errors = batches.flatMap((entry) => entry.errors.map((e) => `${e.method} ${e.code}`));
  const largestBatchOf = (method) => Math.max(0, ...batches.map((entry) => entry.methods.filter((m) => m === method).length));
  return {
    requests: wire.length,
    batches: batches.length,
    largestBatch: Math.max(0, ...wire.map((entry) => entry.methods.length)),
    largestBatchOf: Object.fromEntries(["eth_sendRawTransaction", "eth_estimateGas", "eth_getTransactionReceipt"]
      .map((method) => [method, largestBatchOf(method)])),
    batchedMethods: methods,
    batchedErrors: [...new Set(errors)].sort(),
  };
}

async function expectRejection(promise, what) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error(`${what}: expected an error, got none`);
}

async function burstOf(signer, token, recipient, first, what) {
  const manager = new ethers.NonceManager(signer);
  const sender = token.connect(manager);
  const sent = await within(
    Promise.all(Array.from({ length: BURST }, (_, i) => sender.transfer(recipient, BigInt(first + i)))),
    `${BURST} concurrent sends (${what})`);
  const receipts = await within(Promise.all(sent.map((tx) => tx.wait())), `${BURST} receipts mined (${what})`);
  return {
    sent: sent.length,
    mined: receipts.filter((r) => r.status === 1).length,
    nonces: sent.map((tx) => tx.nonce),
    blocks: new Set(receipts.map((r) => r.blockNumber)).size,
  };
}

async function main() {
  const started = Date.now();
  const http = new ethers.JsonRpcProvider(RPC_URL); // ethers' defaults: batching, 4 s polling
  const httpSends = recordSends(http);
  const httpWire = recordWire(http);
  const unbatched = new ethers.JsonRpcProvider(RPC_URL, undefined, { batchMaxCount: 1 });
  const unbatchedWire = recordWire(unbatched);
  const ws = new ethers.WebSocketProvider(WS_URL);
  const wsSends = recordSends(ws);
  const dev = new ethers.Wallet(DEV_KEY, http);
  const network = await http.getNetwork();
  report.chainId = Number(network.chainId);
  report.defaults = {
    pollingInterval: http.pollingInterval,
    batchMaxCount: http._getOption("batchMaxCount"),
    batchStallTime: http._getOption("batchStallTime"),
    staticNetwork: http._getOption("staticNetwork"),
  };
  assert.equal(Number((await ws.getNetwork()).chainId), report.chainId);

  // 1. Deposit into the fee vault (paid natively: the bootstrap), then read the account.
  const vault = new ethers.Contract(VAULT, VAULT_ABI, dev);
  const deposit = await within((await vault.deposit({ value: ethers.parseEther("1") })).wait(), "deposit");
  assert.equal(deposit.status, 1);
  const lot = deposit.logs.map((log) => vault.interface.parseLog(log)).find((e) => e && e.name === "LotDeposited");
  assert.equal(lot.args.amount, ethers.parseEther("1"));
  const account = await http.send("fee_getAccount", [dev.address, ethers.toQuantity(deposit.blockNumber)]);
  report.account = { status: account.status, available: account.available, deposited: account.deposited };

  // 2. Deploy an OpenZeppelin ERC-20 with default settings (eth_estimateGas of a creation).
  const { abi, bytecode } = compileToken(depsRequire, EVM_VERSION);
  const factory = new ethers.ContractFactory(abi, bytecode, dev);
  const token = await within(factory.deploy(ethers.parseUnits("1000000", 18)), "deploy");
  await within(token.waitForDeployment(), "deployment mined");
  const tokenAddress = await token.getAddress();
  const deployReceipt = await http.getTransactionReceipt(token.deploymentTransaction().hash);
  report.deploy = { address: tokenAddress, gasUsed: Number(deployReceipt.gasUsed), status: deployReceipt.status };
  assert.equal(await token.balanceOf(dev.address), ethers.parseUnits("1000000", 18));

  // 3. Listen for Transfer over WebSocket (eth_subscribe logs) and over HTTP (eth_newFilter,
  // polled with eth_getFilterChanges on each new block the 4 s block poll sees).
  const heard = { ws: [], http: [] };
  const tokenWs = new ethers.Contract(tokenAddress, abi, ws);
  await tokenWs.on("Transfer", (from, to, value) => heard.ws.push({ from, to, value: value.toString() }));
  await token.on("Transfer", (from, to, value) => heard.http.push({ from, to, value: value.toString() }));
  await until(() => wsSends.eth_subscribe >= 1 && httpSends.eth_newFilter >= 1, "subscription and filter");

  // 4. A transfer, lot-paid; the vault's FeeCharged / LotCharged decoded with ethers' Interface.
  const recipient = ethers.Wallet.createRandom().address;
  const sent = await within((await token.transfer(recipient, 1234n)).wait(), "transfer");
  const vaultEvents = sent.logs
    .filter((log) => log.address.toLowerCase() === VAULT.toLowerCase())
    .map((log) => vault.interface.parseLog(log));
  const charged = vaultEvents.find((e) => e.name === "FeeCharged");
  const lots = vaultEvents.filter((e) => e.name === "LotCharged");
  assert.equal(charged.args.payer, dev.address);
  assert.equal(charged.args.fee, sent.gasUsed * sent.gasPrice);
  assert.equal(lots.reduce((sum, e) => sum + e.args.amount, 0n), charged.args.fee);
  report.transfer = {
    gasUsed: Number(sent.gasUsed),
    fee: charged.args.fee.toString(),
    lotCharged: lots.length,
    vaultEvents: vaultEvents.map((e) => e.name),
  };
  await until(() => heard.ws.length >= 1 && heard.http.length >= 1, "Transfer events");
  report.events = { ws: heard.ws.slice(), http: heard.http.slice() };

  // 5. queryFilter (eth_getLogs) sees the mint and the transfer.
  const past = await token.queryFilter(token.filters.Transfer(), 0, "latest");
  report.queryFilter = past.map((e) => ({ from: e.args.from, to: e.args.to, value: e.args.value.toString() }));

  // 6. Twenty concurrent sends from one wallet (NonceManager), all mined: first through the
  // default provider, where the estimates, sends and receipt polls share JSON-RPC batches,
  // then through an unbatched provider (one HTTP request per JSON-RPC request).
  const batchedBurst = await burstOf(dev, token, recipient, 1, "batched");
  const unbatchedBurst = await burstOf(new ethers.Wallet(DEV_KEY, unbatched), token, recipient, 1 + BURST,
    "unbatched");
  const heardAll = 1 + 2 * BURST;
  await until(() => heard.ws.length >= heardAll && heard.http.length >= heardAll, "the bursts' Transfer events");
  report.bursts = { batched: batchedBurst, unbatched: unbatchedBurst };
  report.heard = { ws: heard.ws.length, http: heard.http.length };
  report.recipientBalance = (await token.balanceOf(recipient)).toString();

  // 7. Reverts: a custom error, a reason string and a panic, decoded by ethers; made at once,
  // so the error responses come back inside one batch.
  const poor = ethers.Wallet.createRandom().connect(http);
  const [customError, estimateError, reasonError, panicError] = await within(Promise.all([
    expectRejection(token.connect(poor).transfer.staticCall(dev.address, 1n), "custom error"),
    expectRejection(token.connect(poor).transfer.estimateGas(dev.address, 1n), "estimate"),
    expectRejection(token.mustBePositive(0n), "reason string"),
    expectRejection(token.divide(1n, 0n), "panic"),
  ]), "reverts");
  report.reverts = {
    custom: { code: customError.code, name: customError.revert && customError.revert.name,
              args: customError.revert && customError.revert.args.map(String) },
    estimate: { code: estimateError.code, data: estimateError.data,
                name: estimateError.data && token.interface.parseError(estimateError.data).name },
    reason: { code: reasonError.code, reason: reasonError.reason },
    panic: { code: panicError.code, name: panicError.revert && panicError.revert.name,
             reason: panicError.reason },
  };

  // 8. Fee refusals reach ethers as INSUFFICIENT_FUNDS with the node's text and numbers; the
  // three refused sends are made at once (batched with each other's nonce and fee reads).
  const small = new ethers.Wallet(SMALL_KEY, http);
  await within((await vault.connect(small).deposit({ value: ethers.parseEther("0.01") })).wait(), "small deposit");
  const newcomer = new ethers.Wallet(NEWCOMER_KEY, http);
  const [noAccount, tooMuch, stale] = await within(Promise.all([
    expectRejection(newcomer.sendTransaction({ to: recipient, value: 1n }), "no account"),
    expectRejection(small.sendTransaction({ to: recipient, value: 1n, gasLimit: 1_000_000n }),
      "fee above the available balance"),
    expectRejection(dev.sendTransaction({ to: recipient, value: 1n, nonce: 0 }), "old nonce"),
  ]), "refusals");
  report.refusals = {
    noAccount: { code: noAccount.code, message: noAccount.info.error.message, data: noAccount.info.error.data },
    tooMuch: { code: tooMuch.code, message: tooMuch.info.error.message, data: tooMuch.info.error.data },
    nonce: { code: stale.code, message: stale.info.error.message },
  };

  // 9. The pending block and a few wallet calls parse in ethers.
  const pendingBlock = await http.getBlock("pending");
  report.pending = { number: pendingBlock.number, hash: pendingBlock.hash };
  const [feeData, code, balance] = await Promise.all([
    http.getFeeData(), http.getCode(tokenAddress), http.getBalance(dev.address, "pending")]);
  report.walletCalls = { feeData: feeData.maxFeePerGas.toString(), code: code.length > 2, balance: balance.toString() };

  // 10. Removing listeners uninstalls the filter and the subscription without an error.
  await token.removeAllListeners();
  await tokenWs.removeAllListeners();
  await until(() => httpSends.eth_uninstallFilter >= 1 && wsSends.eth_unsubscribe >= 1, "uninstall");
  report.removed = { uninstallFilter: httpSends.eth_uninstallFilter, unsubscribe: wsSends.eth_unsubscribe };
  report.wire = { defaults: wireSummary(httpWire), unbatched: wireSummary(unbatchedWire) };
  report.seconds = (Date.now() - started) / 1000;
  http.destroy();
  unbatched.destroy();
  await ws.destroy();
  console.log(JSON.stringify(report));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
