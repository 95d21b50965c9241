#!/usr/bin/env bash
# Build the Go programs lilypad runs (kubo's `ipfs`, `bacalhau`) from the Go module
# proxy, at the versions pinned in scripts/_toolchain/go/<program>/go.mod (+ go.sum),
# into a cache outside the source tree:
#
#     ${LILYPAD_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lilypad/bin}/<binary>
#
# (lilypad/toolchain.py looks there too.) Each program is a small main module of the
# project's own that requires the upstream module, because both upstream go.mod files
# have `replace`/`exclude` lines that make `go install MODULE/cmd/X@vN` refuse.
#
# Usage: build-go-tools.sh [ipfs] [bacalhau]    (no argument: both)
#
# Idempotent: next to each binary, <binary>.stamp holds the sha256 of its go.mod,
# go.sum and this script; when it matches and the binary is there, nothing runs
# (no `go` call at all). Go's own GOCACHE/GOMODCACHE (outside the clone by default:
# ~/.cache/go-build, ~/go/pkg/mod) make rebuilds incremental. Builds run under
# `nice -n 19` and a per-binary flock, so concurrent runs never clobber each other.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
script="$here/$(basename "${BASH_SOURCE[0]}")"
bin_dir="${LILYPAD_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lilypad/bin}"

# binary -> its module dir under go/, the upstream module, and the package to build
declare -A module_dir=([ipfs]=kubo [bacalhau]=bacalhau)
declare -A upstream=([ipfs]=github.com/ipfs/kubo [bacalhau]=github.com/bacalhau-project/bacalhau)
declare -A package=([ipfs]=github.com/ipfs/kubo/cmd/ipfs [bacalhau]=github.com/bacalhau-project/bacalhau)

ldflags_for() {  # $1 binary, $2 upstream version: -X flags that stamp the version in
    case "$1" in
        # bacalhau's own Makefile sets this; without it the binary reports v0.0.0-xxxxxxx.
        bacalhau) echo "-X github.com/bacalhau-project/bacalhau/pkg/version.GITVERSION=$2" ;;
        *) echo "" ;;  # kubo's version is a constant in its source
    esac
}

need_go() {  # the preinstalled Go (/usr/local/go) may be missing from a non-login PATH
    if ! command -v go >/dev/null; then
        if [[ -x /usr/local/go/bin/go ]]; then
            PATH="/usr/local/go/bin:$PATH"
        else
            echo "build-go-tools.sh: 'go' not found (needed to build ${!module_dir[*]}; see ../shared/TOOLCHAIN.md)" >&2
            exit 1
        fi
    fi
}

build_one() {
    local name="$1" dir="$here/go/${module_dir[$1]}"
    local out="$bin_dir/$name" stamp="$bin_dir/$name.stamp"
    local want
    want="$(cat "$dir/go.mod" "$dir/go.sum" "$script" | sha256sum | cut -d' ' -f1)"
    if [[ -x "$out" && "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then
        return 0
    fi
    need_go
    mkdir -p "$bin_dir"
    exec {lock}>"$bin_dir/.$name.lock"
    flock "$lock"
    # Another run may have built it while this one waited for the lock.
    if [[ -x "$out" && "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then
        exec {lock}>&-
        return 0
    fi
    local version tmp="$out.tmp.$$" started=$SECONDS
    version="$(cd "$dir" && go list -m -f '{{.Version}}' "${upstream[$name]}")"
    echo "setup: building $name (${upstream[$name]} $version, from the Go module proxy) -> $out"
    (
        cd "$dir"
        # -mod=readonly: a go.sum that does not cover the build is an error, not an edit.
        nice -n 19 go build -mod=readonly -trimpath -buildvcs=false \
            -ldflags "-s -w $(ldflags_for "$name" "$version")" -o "$tmp" "${package[$name]}"
    ) || { rm -f "$tmp"; exec {lock}>&-; return 1; }
    mv -f "$tmp" "$out"
    echo "$want" >"$stamp"
    exec {lock}>&-
    echo "setup: built $name in $((SECONDS - started)) s ($(du -h "$out" | cut -f1))"
}

main() {
    local names=("$@") name
    [[ ${#names[@]} -gt 0 ]] || names=(ipfs bacalhau)
    for name in "${names[@]}"; do
        if [[ -z "${module_dir[$name]:-}" ]]; then
            echo "build-go-tools.sh: unknown program '$name' (known: ${!module_dir[*]})" >&2
            exit 2
        fi
        build_one "$name"
    done
}

# One parsed call, then exit: bash reads a script as it runs, and a checkout that
# changes this file during a long build must not make it run a shifted tail.
main "$@"
exit
