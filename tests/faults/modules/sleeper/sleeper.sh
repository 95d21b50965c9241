#!/bin/sh
# Sleep $1 seconds (default 20), then leave a small result.
sleep "${1:-20}"
echo "slept ${1:-20}s" >/outputs/report
echo "slept ${1:-20}s"
