#!/usr/bin/env bash
# Prepares the browser tests: Debian's Chromium (installed when missing), the pinned npm packages
# (installed when package-lock.json changed), the gRPC-web client generated from the contracts
# (buf + protoc-gen-es) and its bundle, dist/client.js.
#
# Safe to run concurrently with itself and with tests reading what it made: one run at a time holds
# a lock; the client is rebuilt only when its inputs (the contracts, buf.gen.yaml, the npm lock
# file, src/) changed, in a private directory, and moved into place with one rename, so a reader
# sees the old bundle or the new one, never none. Nothing a test may be reading is deleted.
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

inputs=$(
  {
    find ../../../proto -name '*.proto' -type f
    find src -type f
    echo buf.gen.yaml
    echo package-lock.json
  } | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1
)
if [[ -f dist/client.js && "$(cat dist/.inputs 2>/dev/null)" == "$inputs" ]]; then
  exit 0
fi

build=$(mktemp -d .build.XXXXXX)
trap 'rm -rf "$build"' EXIT
cp -R src "$build/src"
# Generated under $build/gen, where $build/src/client.ts imports it from (../gen/…).
npx --no-install buf generate --output "$build" >&2
npx --no-install esbuild "$build/src/client.ts" --bundle --format=iife --target=es2022 --log-level=warning \
  --outfile="$build/client.js" >&2
mkdir -p dist
mv -f "$build/client.js" dist/client.js
echo "$inputs" >dist/.inputs
