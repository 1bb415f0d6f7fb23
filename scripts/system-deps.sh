#!/usr/bin/env bash
# Installs the Debian packages imago and its test suite use (and any named as arguments, as
# scripts/bench-deps.sh does), and starts dockerd when none answers.
# Needs root (apt-get). Safe to run again: it installs only what is missing.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# util-linux: nsenter (the guard's drift tests); systemd: systemd-analyze (the shipped unit file is checked);
# haproxy: the default data plane (without it, imago runs its built-in router); openssl: the TLS tests' certificates;
# redis-server, redis-tools: the TCP data plane's test (a Redis baked from the host, redis-benchmark through the router);
# prometheus: the /metrics test scrapes imago with a real Prometheus and reads a value back through its query API;
# rsyslog: the log forwarding test runs rsyslogd on a loopback port and checks every line arrives, across its restart;
# rsyslog-gnutls: and over TLS (RFC 5425), with a certificate made by openssl
packages=(bubblewrap busybox-static skopeo umoci docker.io git ca-certificates util-linux systemd haproxy openssl redis-server redis-tools prometheus rsyslog rsyslog-gnutls "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "system-deps: installing ${missing[*]}"
  # Packages with a daemon (haproxy, redis-server, nginx) must not start one on install: imago and its benches run their own.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# dockerd: the docker provider and the export tests talk to a real engine.
if ! docker info >/dev/null 2>&1; then
  echo "system-deps: starting dockerd"
  nohup dockerd >/var/log/imago-dockerd.log 2>&1 &
  for _ in $(seq 1 120); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { echo "system-deps: dockerd did not start; see /var/log/imago-dockerd.log" >&2; tail -20 /var/log/imago-dockerd.log >&2; exit 1; }
fi
echo "system-deps: ready (bwrap $(bwrap --version | cut -d' ' -f2), docker $(docker version --format '{{.Server.Version}}'), $(haproxy -v | head -1 | cut -d' ' -f1-3))"
