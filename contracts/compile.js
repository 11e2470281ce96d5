#!/usr/bin/env node
// Compiles contracts/src/*.sol with the pinned solc-js (package.json) into Foundry-style
// artifacts contracts/out/<Contract>.json = {abi, bytecode: {object}, deployedBytecode: {object}}.
// Deterministic: the same sources give byte-identical artifacts, so `--check` can tell whether
// the committed artifacts are current. Also writes contracts/out/sources.sha256 (sha256sum
// format) of the sources and this script, which a fast cargo test compares with the files.
// Usage: node contracts/compile.js [--check]
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const SRC = path.join(__dirname, 'src');
const OUT = path.join(__dirname, 'out');
// Contracts that get an artifact (the others are libraries, interfaces or types).
const ARTIFACTS = ['ProofMarket', 'CollateralToken', 'AttestationVerifier', 'IVerifier'];

function input() {
  const sources = {};
  for (const file of fs.readdirSync(SRC).filter((f) => f.endsWith('.sol')).sort()) {
    sources[file] = { content: fs.readFileSync(path.join(SRC, file), 'utf8') };
  }
  return {
    language: 'Solidity',
    sources,
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: 'cancun',
      metadata: { bytecodeHash: 'none', appendCBOR: false },
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
    },
  };
}

function compile() {
  const output = JSON.parse(solc.compile(JSON.stringify(input())));
  const errors = (output.errors || []).filter((e) => e.severity === 'error');
  for (const e of output.errors || []) console.error(e.formattedMessage);
  if (errors.length) process.exit(1);
  const artifacts = {};
  for (const [file, contracts] of Object.entries(output.contracts)) {
    for (const [name, c] of Object.entries(contracts)) {
      if (!ARTIFACTS.includes(name)) continue;
      const artifact = {
        abi: c.abi,
        bytecode: { object: '0x' + c.evm.bytecode.object },
        deployedBytecode: { object: '0x' + c.evm.deployedBytecode.object },
        compiler: `solc-js ${solc.version()}`,
        source: `contracts/src/${file}`,
      };
      artifacts[name] = JSON.stringify(artifact, null, 2) + '\n';
    }
  }
  artifacts['sources.sha256'] = sourcesDigest();
  return artifacts;
}

/// sha256sum-style lines for every source and this script, paths from the repository root.
function sourcesDigest() {
  const root = path.join(__dirname, '..');
  const files = Object.keys(input().sources).map((f) => path.join(SRC, f)).concat([__filename]);
  return files
    .map((f) => {
      const digest = crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');
      return `${digest}  ${path.relative(root, f)}\n`;
    })
    .join('');
}

const check = process.argv.includes('--check');
const artifacts = compile();
let stale = 0;
fs.mkdirSync(OUT, { recursive: true });
for (const [name, text] of Object.entries(artifacts)) {
  const file = path.join(OUT, name.includes('.') ? name : `${name}.json`);
  const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null;
  if (current === text) continue;
  if (check) {
    console.error(`stale: ${path.relative(path.join(__dirname, '..'), file)} (run node contracts/compile.js)`);
    stale++;
  } else {
    fs.writeFileSync(file, text);
    console.error(`wrote ${path.relative(path.join(__dirname, '..'), file)}`);
  }
}
process.exit(stale ? 1 : 0);
