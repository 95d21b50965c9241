#!/usr/bin/env bash
# Install the solcjs-backed `solc` stand-in where py-solc-x looks for compilers:
#   ${SOLCX_BINARY_PATH:-~/.solcx}/solc-v<version of node_modules/solc>
# It is a tiny sh launcher that execs node on scripts/_toolchain/solc-wrapper.js of
# this checkout (absolute path). Idempotent: rewrites the launcher only when
# its content would change (checkout moved, solc upgraded, node moved).
# Needs `npm ci` to have run (node_modules/solc).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
wrapper="$root/scripts/_toolchain/solc-wrapper.js"
solc_pkg="$root/node_modules/solc/package.json"

if [[ ! -f "$solc_pkg" ]]; then
    echo "install-solc.sh: $solc_pkg missing; run 'npm ci' first" >&2
    exit 1
fi
node_bin="$(command -v node)" || { echo "install-solc.sh: node not found" >&2; exit 1; }

version="$("$node_bin" -p "require(process.argv[1]).version" "$solc_pkg")"
dest_dir="${SOLCX_BINARY_PATH:-$HOME/.solcx}"
dest="$dest_dir/solc-v$version"

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
# Written by $root/scripts/_toolchain/install-solc.sh; rerun it if the checkout moves.
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
