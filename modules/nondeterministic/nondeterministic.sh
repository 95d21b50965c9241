#!/bin/sh
# Deliberately non-deterministic: every run writes different bytes to
# /outputs (and stdout), so two runs never share a result CID. lilypad uses
# it to exercise mediation, where a re-run must disagree with the original.
set -eu
head -c 32 /dev/urandom > /outputs/random.bin
cat /proc/sys/kernel/random/uuid > /outputs/uuid.txt
{ date -u +%Y-%m-%dT%H:%M:%SZ; cut -d' ' -f1 /proc/uptime; } > /outputs/time.txt
echo "run $(cat /outputs/uuid.txt) at $(head -n1 /outputs/time.txt)"
