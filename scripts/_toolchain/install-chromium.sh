#!/usr/bin/env bash
# Install a headless-capable Chromium from Debian's apt mirror (the only place a
# browser can come from on these machines: no browser downloads, no CDN).
# Used lazily by the solver status-page browser test; idempotent and quiet when
# chromium is already on PATH. Exit 0: installed (or present); 3: apt is
# unreachable or has no chromium package (the caller skips with that reason).
set -euo pipefail

log() { echo "install-chromium: $*" >&2; }

for name in chromium chromium-browser; do
    if command -v "$name" >/dev/null 2>&1; then exit 0; fi
done

SUDO=""
if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null || { log "needs root for apt-get"; exit 3; }
    SUDO="sudo"
fi
command -v apt-get >/dev/null || { log "no apt-get on this machine"; exit 3; }

export DEBIAN_FRONTEND=noninteractive
if ! apt-cache show chromium >/dev/null 2>&1; then
    log "apt-get update"
    $SUDO apt-get update -qq || { log "apt-get update failed (apt mirror unreachable?)"; exit 3; }
fi
apt-cache show chromium >/dev/null 2>&1 || { log "apt has no 'chromium' package"; exit 3; }
log "apt-get install chromium"
if ! $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; then
    log "apt-get install chromium failed"
    exit 3
fi
command -v chromium >/dev/null || { log "chromium installed but not on PATH"; exit 3; }
