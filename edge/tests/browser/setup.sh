#!/usr/bin/env bash
# Prepares the browser tests: Debian's Chromium (installed when missing), the pinned npm packages
# (installed when package-lock.json changed), the gRPC-web client generated from the contracts
# (buf + protoc-gen-es) and its bundle. Safe to run concurrently: one run at a time holds a lock.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

exec 9>.setup.lock
flock 9

if ! command -v chromium >/dev/null && [[ ! -x ${CHROMIUM:-/usr/bin/chromium} ]]; then
  echo "installing chromium (apt)" >&2
  if ((EUID == 0)); then sudo=(); else sudo=(sudo); fi
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
command -v node >/dev/null || { echo "node is missing: install Node.js 20+ (apt-get install nodejs npm)" >&2; exit 1; }

stamp=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -d node_modules || "$(cat .installed 2>/dev/null)" != "$stamp" ]]; then
  echo "installing npm packages" >&2
  # Not `npm ci`: the registry reachable here lacks some platforms' optional binaries (buf for
  # macOS and Windows), so the lock cannot list them and `npm ci` refuses it. `install` with
  # --no-save follows package-lock.json and writes nothing back.
  npm install --no-save --no-audit --no-fund --loglevel=error >&2
  echo "$stamp" >.installed
fi

rm -rf gen dist
npx --no-install buf generate >&2
npx --no-install esbuild src/client.ts --bundle --format=iife --target=es2022 --log-level=warning --outfile=dist/client.js >&2
