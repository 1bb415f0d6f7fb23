#!/usr/bin/env bash
# imago quick start: installs what imago needs, builds it, and runs the main job on the embedded
# default: bakes examples/hello, starts the control plane (if none runs), deploys 3 replicas of
# hello behind its router and prints the URL.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
npm ci --no-fund --no-audit
npm run build
imago=("$PWD/bin/imago.js")
home="${IMAGO_HOME:-$HOME/.imago}"
cd examples/hello
"${imago[@]}" bake
"${imago[@]}" images
if ! "${imago[@]}" status >/dev/null 2>&1; then
  mkdir -p "$home"
  nohup "${imago[@]}" server >"$home/server.log" 2>&1 &
  echo "started imago server (pid $!, log $home/server.log)"
  for _ in $(seq 1 100); do
    "${imago[@]}" status >/dev/null 2>&1 && break
    sleep 0.2
  done
fi
"${imago[@]}" deploy hello
"${imago[@]}" status
echo
echo "hello is served at http://127.0.0.1:8080/ :"
curl -fsS http://127.0.0.1:8080/
