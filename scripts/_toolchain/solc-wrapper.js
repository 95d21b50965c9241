#!/usr/bin/env node
// A stand-in for the native `solc` binary, built on solcjs (the npm package
// `solc`, the official compiler compiled to wasm). py-solc-x (and so
// ape-solidity) treats any executable `~/.solcx/solc-v<X.Y.Z>` as an installed
// compiler; scripts/_toolchain/install-solc.sh puts a launcher there that execs this file.
//
// What py-solc-x 2.0.5 / ape-solidity 0.8.6 actually run:
//   solc --version                                   (before every call)
//   solc --standard-json --base-path <project>       (ape compile; JSON on stdin)
//   solc --help                                      (compile_code: combined-json outputs)
//   solc [k=v ...] --combined-json <outs> --base-path <project> [flags] -
//                                                    (compile_code: source on stdin)
// --allow-paths, --include-path, --output-dir and --overwrite are accepted too.
// Unknown flags fail the way native solc does ("unrecognised option '--x'").
//
// Loading solcjs takes ~0.5 s, so --version and --help never load it: the long
// version string comes from LILYPAD_SOLC_LONG_VERSION (written into the
// launcher by install.sh) when it matches the installed solc package.
"use strict";

const fs = require("fs");
const path = require("path");

// This file lives at <checkout>/scripts/_toolchain/solc-wrapper.js, and install-solc.sh runs a copy
// of it beside a copy of the solc package (~/.cache/lilypad/solc-<version>/).
const CHECKOUT = path.resolve(__dirname, "..", "..");

const COMBINED_JSON_OUTPUTS = [
  "abi", "asm", "ast", "bin", "bin-runtime", "devdoc", "function-debug",
  "function-debug-runtime", "generated-sources", "generated-sources-runtime",
  "hashes", "metadata", "opcodes", "srcmap", "srcmap-runtime", "storage-layout",
  "userdoc",
];

// Flags taking a value, and boolean flags, of native solc that we honour.
const VALUE_FLAGS = new Set([
  "--base-path", "--include-path", "--allow-paths", "--output-dir",
  "--combined-json", "--evm-version", "--optimize-runs", "--metadata-hash",
  "--revert-strings", "--yul-optimizations",
]);
const BOOL_FLAGS = new Set([
  "--standard-json", "--version", "--help", "--overwrite", "--optimize",
  "--via-ir", "--metadata-literal", "--no-optimize-yul", "--optimize-yul",
]);

function fail(message, code) {
  process.stderr.write(message.endsWith("\n") ? message : message + "\n");
  process.exitCode = code === undefined ? 1 : code;
}

function solcPackageDir() {
  return path.dirname(require.resolve("solc/package.json", { paths: [__dirname, CHECKOUT] }));
}

let solcModule = null;
function loadSolc() {
  if (!solcModule) {
    solcModule = require(require.resolve("solc", { paths: [__dirname, CHECKOUT] }));
  }
  return solcModule;
}

// "0.8.28+commit.7893614a.Emscripten.clang" -> "0.8.28+commit.7893614a.Linux.g++"
// (the platform part is what native Linux builds print; py-solc-x only needs
// "X.Y.Z+commit.<hash>").
function longVersion() {
  const pkgVersion = JSON.parse(
    fs.readFileSync(path.join(solcPackageDir(), "package.json"), "utf8")
  ).version;
  let v = process.env.LILYPAD_SOLC_LONG_VERSION || "";
  if (!v.startsWith(pkgVersion + "+commit.")) v = loadSolc().version();
  const m = /^(\d+\.\d+\.\d+(?:-[\w.]+)?\+commit\.[0-9a-f]+)/.exec(v);
  return (m ? m[1] : v) + ".Linux.g++";
}

function parseArgs(argv) {
  const opts = { positional: [], includePaths: [], allowPaths: [] };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let value;
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    if (eq > 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    if (!arg.startsWith("--") || arg === "-") {
      opts.positional.push(arg);
    } else if (VALUE_FLAGS.has(arg)) {
      if (value === undefined) {
        if (i + 1 >= argv.length) throw new Error(`the required argument for option '${arg}' is missing`);
        value = argv[++i];
      }
      if (arg === "--include-path") opts.includePaths.push(value);
      else if (arg === "--allow-paths") opts.allowPaths.push(...value.split(",").filter(Boolean));
      else opts[arg.slice(2)] = value;
    } else if (BOOL_FLAGS.has(arg)) {
      opts[arg.slice(2)] = true;
    } else {
      const err = new Error(`unrecognised option '${arg}'`);
      err.unknownOption = true;
      throw err;
    }
  }
  return opts;
}

// Import callback: solc hands over a source unit name (after remappings).
// Look for it as given (absolute), under the base path, the include paths, the
// current directory and this checkout, and in node_modules of each of those
// and of their parents (node-style), so "@openzeppelin/contracts/..." resolves
// from the project's node_modules.
function makeResolver(opts) {
  const roots = [];
  const add = (p) => {
    if (!p) return;
    const abs = path.resolve(p);
    if (!roots.includes(abs)) roots.push(abs);
  };
  add(opts["base-path"]);
  opts.includePaths.forEach(add);
  add(process.cwd());
  add(CHECKOUT);

  const nodeModuleDirs = [];
  for (const root of roots) {
    for (let dir = root; ; dir = path.dirname(dir)) {
      const nm = path.join(dir, "node_modules");
      if (!nodeModuleDirs.includes(nm) && fs.existsSync(nm)) nodeModuleDirs.push(nm);
      if (path.dirname(dir) === dir) break;
    }
  }

  const candidates = (name) => {
    const out = [];
    if (path.isAbsolute(name)) out.push(name);
    for (const r of roots) out.push(path.join(r, name));
    for (const nm of nodeModuleDirs) out.push(path.join(nm, name));
    for (const a of opts.allowPaths) out.push(path.join(path.resolve(a), name));
    return out;
  };

  return function resolve(name) {
    for (const file of candidates(name)) {
      try {
        if (fs.statSync(file).isFile()) return { contents: fs.readFileSync(file, "utf8") };
      } catch (_) {
        // try the next candidate
      }
    }
    return { error: `File not found: ${name}` };
  };
}

function writeOutput(text, opts, fileName) {
  if (opts["output-dir"]) {
    const dir = path.resolve(opts["output-dir"]);
    const file = path.join(dir, fileName);
    if (fs.existsSync(file) && !opts.overwrite) {
      fail(`Refusing to overwrite existing file "${file}" (use --overwrite to force).`);
      return;
    }
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(file, text);
    return;
  }
  process.stdout.write(text);
}

function readStdin() {
  try {
    return fs.readFileSync(0, "utf8");
  } catch (err) {
    if (err.code === "EAGAIN" || err.code === "EOF") return "";
    throw err;
  }
}

function standardJson(opts) {
  const input = readStdin();
  const output = loadSolc().compile(input, { import: makeResolver(opts) });
  writeOutput(output, opts, "standard.json");
}

function buildSettings(opts, outputs) {
  const settings = {
    optimizer: { enabled: Boolean(opts.optimize) },
    outputSelection: { "*": { "*": [], "": [] } },
  };
  if (opts["optimize-runs"] !== undefined) settings.optimizer.runs = Number(opts["optimize-runs"]);
  if (opts["no-optimize-yul"] || opts["optimize-yul"] || opts["yul-optimizations"]) {
    settings.optimizer.details = { yul: !opts["no-optimize-yul"] };
    if (opts["yul-optimizations"]) {
      settings.optimizer.details.yulDetails = { optimizerSteps: opts["yul-optimizations"] };
    }
  }
  if (opts["evm-version"]) settings.evmVersion = opts["evm-version"];
  if (opts["via-ir"]) settings.viaIR = true;
  if (opts["revert-strings"]) settings.debug = { revertStrings: opts["revert-strings"] };
  if (opts["metadata-hash"] || opts["metadata-literal"]) {
    settings.metadata = {};
    if (opts["metadata-hash"]) settings.metadata.bytecodeHash = opts["metadata-hash"];
    if (opts["metadata-literal"]) settings.metadata.useLiteralContent = true;
  }
  const sel = {
    abi: "abi", asm: "evm.legacyAssembly", bin: "evm.bytecode.object",
    "bin-runtime": "evm.deployedBytecode.object", devdoc: "devdoc", userdoc: "userdoc",
    "function-debug": "evm.bytecode.functionDebugData",
    "function-debug-runtime": "evm.deployedBytecode.functionDebugData",
    "generated-sources": "evm.bytecode.generatedSources",
    "generated-sources-runtime": "evm.deployedBytecode.generatedSources",
    hashes: "evm.methodIdentifiers", metadata: "metadata", opcodes: "evm.bytecode.opcodes",
    srcmap: "evm.bytecode.sourceMap", "srcmap-runtime": "evm.deployedBytecode.sourceMap",
    "storage-layout": "storageLayout",
  };
  for (const o of outputs) {
    if (o === "ast") settings.outputSelection["*"][""].push("ast");
    else if (sel[o]) settings.outputSelection["*"]["*"].push(sel[o]);
    else throw new Error(`Invalid option to --combined-json: ${o}`);
  }
  return settings;
}

// The legacy `--combined-json` mode, translated to standard JSON and back.
function combinedJson(opts) {
  const outputs = opts["combined-json"].split(",").filter(Boolean);
  const remappings = [];
  const sources = {};
  const basePath = opts["base-path"] ? path.resolve(opts["base-path"]) : null;
  for (const p of opts.positional) {
    if (p === "-") {
      sources["<stdin>"] = { content: readStdin() };
    } else if (p.includes("=")) {
      remappings.push(p);
    } else {
      const abs = path.resolve(p);
      let unit = p;
      if (basePath && abs.startsWith(basePath + path.sep)) unit = path.relative(basePath, abs);
      sources[unit] = { content: fs.readFileSync(abs, "utf8") };
    }
  }
  if (Object.keys(sources).length === 0) {
    fail("No input files given. If you wish to use the standard input please specify \"-\" explicitly.");
    return;
  }
  const settings = buildSettings(opts, outputs);
  if (remappings.length) settings.remappings = remappings;
  const input = { language: "Solidity", sources, settings };
  const solc = loadSolc();
  const out = JSON.parse(solc.compile(JSON.stringify(input), { import: makeResolver(opts) }));

  const errors = (out.errors || []).filter((e) => e.severity === "error");
  for (const e of out.errors || []) process.stderr.write((e.formattedMessage || e.message) + "\n");
  if (errors.length) {
    process.exitCode = 1;
    return;
  }

  const get = (obj, dotted) => dotted.split(".").reduce((o, k) => (o == null ? o : o[k]), obj);
  const contractOutputs = buildSettings({}, outputs.filter((o) => o !== "ast")).outputSelection["*"]["*"];
  const names = outputs.filter((o) => o !== "ast");
  const result = { contracts: {}, sources: {}, version: longVersion() };
  for (const [file, contracts] of Object.entries(out.contracts || {})) {
    for (const [name, data] of Object.entries(contracts)) {
      const entry = {};
      names.forEach((o, i) => {
        const v = get(data, contractOutputs[i]);
        if (v !== undefined) entry[o] = v;
      });
      result.contracts[`${file}:${name}`] = entry;
    }
  }
  for (const [file, src] of Object.entries(out.sources || {})) {
    result.sources[file] = { id: src.id };
    if (outputs.includes("ast") && src.ast) result.sources[file].AST = src.ast;
  }
  writeOutput(JSON.stringify(result), opts, "combined.json");
}

function help() {
  process.stdout.write(
    "solc, the Solidity commandline compiler (solcjs behind lilypad's wrapper).\n\n" +
      "Usage: solc [options] [input_file...]\n\n" +
      "Supported options:\n" +
      "  --version            Show version and exit.\n" +
      "  --standard-json      Switch to Standard JSON input / output mode.\n" +
      "  --base-path path     Use the given path as the root of the source tree.\n" +
      "  --include-path path  Make an additional source directory available.\n" +
      "  --allow-paths path(s)\n" +
      "  --output-dir path    Write output into this directory.\n" +
      "  --overwrite          Overwrite existing files.\n" +
      "  --evm-version version\n" +
      "  --optimize           Enable bytecode optimizer.\n" +
      "  --optimize-runs n    \n" +
      "  --via-ir             \n" +
      "  --combined-json " + COMBINED_JSON_OUTPUTS.join(",") + "\n"
  );
}

function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    fail(err.message);
    return;
  }
  if (opts.version) {
    process.stdout.write(
      "solc, the solidity compiler commandline interface\nVersion: " + longVersion() + "\n"
    );
  } else if (opts.help) {
    help();
  } else if (opts["standard-json"]) {
    standardJson(opts);
  } else if (opts["combined-json"]) {
    combinedJson(opts);
  } else {
    fail("lilypad solc wrapper: only --version, --help, --standard-json and --combined-json are supported.");
  }
}

try {
  main();
} catch (err) {
  fail(String((err && err.stack) || err));
}
