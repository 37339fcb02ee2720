// Compiles tests/js/Token.sol (OpenZeppelin ERC-20) with the npm solc pinned in package.json.
// As a script: `FEE_JS_DEPS=<dir> node compile.cjs <evmVersion>` prints {abi, bytecode} as
// JSON (tests/js/Token.json is that output, for the web3.py tests, which need no Node.js).
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { createRequire } = require("node:module");

function compileToken(depsRequire, evmVersion) {
  const solc = depsRequire("solc");
  const input = {
    language: "Solidity",
    sources: { "Token.sol": { content: fs.readFileSync(path.join(__dirname, "Token.sol"), "utf8") } },
    settings: {
      evmVersion,
      optimizer: { enabled: true, runs: 200 },
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
    },
  };
  const findImports = (name) => {
    try {
      return { contents: fs.readFileSync(depsRequire.resolve(name), "utf8") };
    } catch (error) {
      return { error: `not found: ${name}` };
    }
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  if (errors.length) throw new Error("solc: " + errors.map((e) => e.formattedMessage).join("\n"));
  const token = output.contracts["Token.sol"].Token;
  return { solc: solc.version(), evmVersion, abi: token.abi, bytecode: "0x" + token.evm.bytecode.object };
}

module.exports = { compileToken };

if (require.main === module) {
  const depsRequire = createRequire(path.join(process.env.FEE_JS_DEPS, "package.json"));
  process.stdout.write(JSON.stringify(compileToken(depsRequire, process.argv[2] || "prague"), null, 1) + "\n");
}
