#!/usr/bin/env bash
# Install the solcjs-backed `solc` stand-in where py-solc-x looks for compilers:
#   ${SOLCX_BINARY_PATH:-~/.solcx}/solc-v<version of node_modules/solc>
# It is a tiny sh launcher that execs node on a copy of scripts/_toolchain/solc-wrapper.js
# and of the solc package (with its dependencies) under
#   ${LILYPAD_CACHE_DIR:-~/.cache/lilypad}/solc-<version>/
# so the compiler does not depend on any one checkout: a second checkout (a CI clone, a
# worktree) that runs setup and is then deleted leaves every other checkout's solc working.
# Idempotent: copies and rewrites only what would change (solc upgraded, wrapper edited,
# node moved). Needs `npm ci` to have run (node_modules/solc).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
solc_pkg="$root/node_modules/solc/package.json"

if [[ ! -f "$solc_pkg" ]]; then
    echo "install-solc.sh: $solc_pkg missing; run 'npm ci' first" >&2
    exit 1
fi
node_bin="$(command -v node)" || { echo "install-solc.sh: node not found" >&2; exit 1; }

version="$("$node_bin" -p "require(process.argv[1]).version" "$solc_pkg")"
dest_dir="${SOLCX_BINARY_PATH:-$HOME/.solcx}"
dest="$dest_dir/solc-v$version"

# The checkout-independent copy: the wrapper and solc's whole dependency tree (flat npm layout).
home="${LILYPAD_CACHE_DIR:-$HOME/.cache/lilypad}/solc-$version"
packages="$(cd "$root" && "$node_bin" -e '
const fs = require("fs"), path = require("path"), seen = new Set();
(function walk(name) {
  if (seen.has(name)) return;
  seen.add(name);
  const pj = JSON.parse(fs.readFileSync(path.join("node_modules", name, "package.json")));
  Object.keys(pj.dependencies || {}).forEach(walk);
})("solc");
console.log([...seen].join(" "));')"
if ! cmp -s "$root/scripts/_toolchain/solc-wrapper.js" "$home/solc-wrapper.js" \
        || ! cmp -s "$solc_pkg" "$home/node_modules/solc/package.json"; then
    tmp_home="$(mktemp -d "${home}.XXXXXX")"
    mkdir -p "$tmp_home/node_modules"
    for package in $packages; do
        cp -a "$root/node_modules/$package" "$tmp_home/node_modules/"
    done
    cp "$root/scripts/_toolchain/solc-wrapper.js" "$tmp_home/solc-wrapper.js"
    rm -rf "$home"
    mv "$tmp_home" "$home"
    echo "copied solcjs $version and its wrapper to $home"
fi
wrapper="$home/solc-wrapper.js"

# The long version (with commit hash) is baked into the launcher so that
# `solc --version`, which py-solc-x runs before every compile, never has to
# load the 9 MB solcjs. Reuse the value already in the launcher when it is for
# the same solc version; otherwise ask solcjs once.
long=""
if [[ -f "$dest" ]]; then
    long="$(sed -n 's/^LILYPAD_SOLC_LONG_VERSION=\(.*\)$/\1/p' "$dest" | head -n1)"
fi
if [[ "$long" != "$version+commit."* ]]; then
    long="$(cd "$root" && "$node_bin" -p "require('solc').version()")"
fi

launcher="#!/bin/sh
# solc $version for py-solc-x: solcjs behind $wrapper
# Written by scripts/_toolchain/install-solc.sh (make setup) of a lilypad checkout.
LILYPAD_SOLC_LONG_VERSION=$long
export LILYPAD_SOLC_LONG_VERSION
exec \"$node_bin\" \"$wrapper\" \"\$@\"
"

if [[ -x "$dest" && "$(cat "$dest")" == "${launcher%$'\n'}" ]]; then
    exit 0
fi

mkdir -p "$dest_dir"
tmp="$(mktemp "$dest_dir/.solc-v$version.XXXXXX")"
printf '%s' "$launcher" >"$tmp"
chmod 0755 "$tmp"
mv -f "$tmp" "$dest"
echo "installed $dest -> $wrapper (solcjs $long)"
