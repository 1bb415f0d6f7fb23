#!/usr/bin/env bash
# Installs what the benchmarks use beyond the test suite's packages: wrk (the load), nginx (the
# standalone peer of the router bench). Needs root. Debian's nginx package starts a server on
# port 80 when installed; system-deps.sh holds that start back (the bench runs its own).
set -euo pipefail
bash "$(dirname "$0")/system-deps.sh" wrk nginx-light
echo "bench-deps: ready ($(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), $(nginx -v 2>&1))"
