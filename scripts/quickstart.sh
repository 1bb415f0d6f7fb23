#!/usr/bin/env bash
# imago quick start: installs what imago needs, builds it, and runs the main job on the embedded
# default: bakes examples/hello into the local image store and lists it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
npm ci --no-fund --no-audit
npm run build
cd examples/hello
../../bin/imago.js bake
../../bin/imago.js images
