// A dapp developer's first session against a fee-node, with ethers v6 and default settings.
// Run by tests/test_ethers_e2e.py against a real `fee-node run`; prints one JSON report line
// (the last line of stdout) and exits non-zero on the first failed step.
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

async function expectRejection(promise, what) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error(`${what}: expected an error, got none`);
}

async function main() {
  const http = new ethers.JsonRpcProvider(RPC_URL, undefined, { batchMaxCount: 1, pollingInterval: 200 });
  const httpSends = recordSends(http);
  const ws = new ethers.WebSocketProvider(WS_URL);
  const wsSends = recordSends(ws);
  const dev = new ethers.Wallet(DEV_KEY, http);
  const network = await http.getNetwork();
  report.chainId = Number(network.chainId);
  assert.equal(Number((await ws.getNetwork()).chainId), report.chainId);

  // 1. Deposit into the fee vault (paid natively: the bootstrap), then read the account.
  const vault = new ethers.Contract(VAULT, VAULT_ABI, dev);
  const deposit = await within((await vault.deposit({ value: ethers.parseEther("1") })).wait(), "deposit");
  assert.equal(deposit.status, 1);
  const lot = deposit.logs.map((log) => vault.interface.parseLog(log)).find((e) => e && e.name === "LotDeposited");
  assert.equal(lot.args.amount, ethers.parseEther("1"));
  const account = await http.send("fee_getAccount", [dev.address, "latest"]);
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

  // 3. Listen for Transfer over WebSocket (eth_subscribe logs) and over HTTP (eth_newFilter).
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

  // 6. Twenty concurrent, unbatched sends from one wallet (NonceManager): all mined.
  const manager = new ethers.NonceManager(dev);
  const tokenBurst = token.connect(manager);
  const burst = await within(
    Promise.all(Array.from({ length: 20 }, (_, i) => tokenBurst.transfer(recipient, BigInt(i + 1)))),
    "20 concurrent sends");
  const receipts = await within(Promise.all(burst.map((tx) => tx.wait())), "20 receipts mined");
  await until(() => heard.ws.length >= 21 && heard.http.length >= 21, "the burst's Transfer events");
  report.burst = {
    sent: burst.length,
    mined: receipts.filter((r) => r.status === 1).length,
    blocks: new Set(receipts.map((r) => r.blockNumber)).size,
    recipientBalance: (await token.balanceOf(recipient)).toString(),
    heardWs: heard.ws.length,
    heardHttp: heard.http.length,
  };

  // 7. Reverts: a custom error, a reason string and a panic, decoded by ethers.
  const poor = ethers.Wallet.createRandom().connect(http);
  const customError = await expectRejection(token.connect(poor).transfer.staticCall(dev.address, 1n), "custom error");
  const estimateError = await expectRejection(token.connect(poor).transfer.estimateGas(dev.address, 1n), "estimate");
  const reasonError = await expectRejection(token.mustBePositive(0n), "reason string");
  const panicError = await expectRejection(token.divide(1n, 0n), "panic");
  report.reverts = {
    custom: { code: customError.code, name: customError.revert && customError.revert.name,
              args: customError.revert && customError.revert.args.map(String) },
    estimate: { code: estimateError.code, data: estimateError.data,
                name: estimateError.data && token.interface.parseError(estimateError.data).name },
    reason: { code: reasonError.code, reason: reasonError.reason },
    panic: { code: panicError.code, name: panicError.revert && panicError.revert.name,
             reason: panicError.reason },
  };

  // 8. Fee refusals reach ethers as INSUFFICIENT_FUNDS with the node's text and numbers.
  const newcomer = new ethers.Wallet(NEWCOMER_KEY, http);
  const noAccount = await expectRejection(newcomer.sendTransaction({ to: recipient, value: 1n }), "no account");
  const small = new ethers.Wallet(SMALL_KEY, http);
  const smallVault = vault.connect(small);
  await within((await smallVault.deposit({ value: ethers.parseEther("0.01") })).wait(), "small deposit");
  const tooMuch = await expectRejection(small.sendTransaction({ to: recipient, value: 1n, gasLimit: 1_000_000n }),
    "fee above the available balance");
  const stale = await expectRejection(dev.sendTransaction({ to: recipient, value: 1n, nonce: 0 }), "old nonce");
  report.refusals = {
    noAccount: { code: noAccount.code, message: noAccount.info.error.message, data: noAccount.info.error.data },
    tooMuch: { code: tooMuch.code, message: tooMuch.info.error.message, data: tooMuch.info.error.data },
    nonce: { code: stale.code, message: stale.info.error.message },
  };

  // 9. The pending block and a few wallet calls parse in ethers.
  const pendingBlock = await http.getBlock("pending");
  report.pending = { number: pendingBlock.number, hash: pendingBlock.hash };
  report.walletCalls = {
    feeData: (await http.getFeeData()).maxFeePerGas.toString(),
    code: (await http.getCode(tokenAddress)).length > 2,
    balance: (await http.getBalance(dev.address, "pending")).toString(),
  };

  // 10. Removing listeners uninstalls the filter and the subscription without an error.
  await token.removeAllListeners();
  await tokenWs.removeAllListeners();
  await until(() => httpSends.eth_uninstallFilter >= 1 && wsSends.eth_unsubscribe >= 1, "uninstall");
  report.removed = { uninstallFilter: httpSends.eth_uninstallFilter, unsubscribe: wsSends.eth_unsubscribe };
  http.destroy();
  await ws.destroy();
  console.log(JSON.stringify(report));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
