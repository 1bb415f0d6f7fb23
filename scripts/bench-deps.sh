#!/usr/bin/env bash
# Installs what the benchmarks use beyond the test suite's packages: wrk (the load), nginx (the
# standalone peer of the router bench). Needs root. Debian's nginx package starts a server on
# port 80 when installed; the bench runs its own, so that start is held back (policy-rc.d).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
bash "$(dirname "$0")/system-deps.sh"
packages=(wrk nginx-light)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "bench-deps: installing ${missing[*]}"
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
echo "bench-deps: ready ($(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), $(nginx -v 2>&1))"
