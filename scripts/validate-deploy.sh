#!/usr/bin/env bash
# Offline validation of the deployment files (no Docker engine needed):
#   1. docker-compose config -q   (Debian's docker-compose; apt-installed if missing and possible)
#   2. node scripts/validate-deploy.mjs   (structure of compose, Dockerfile, .dockerignore, nginx.conf)
#   3. nginx -t on a copy of deploy/nginx/nginx.conf with upstream hosts rewritten to 127.0.0.1
# Prints one line per check (PASS/FAIL/SKIP); exits non-zero if any check fails.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

failures=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
skip() { echo "SKIP $*"; }

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# ---- 1. docker-compose config -------------------------------------------------
if ! command -v docker-compose >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "info: docker-compose not found, trying apt-get install -y docker-compose" >&2
  { apt-get install -y -qq docker-compose >"$TMP/apt.log" 2>&1 \
    || { apt-get update -qq >>"$TMP/apt.log" 2>&1 && apt-get install -y -qq docker-compose >>"$TMP/apt.log" 2>&1; }; } \
    || { echo "info: apt-get install docker-compose failed:" >&2; tail -n 3 "$TMP/apt.log" >&2; }
fi
if command -v docker-compose >/dev/null 2>&1; then
  # Dummy values for the variables the compose file requires (${VAR:?...}).
  if out="$(cd "$ROOT" && BOOTSTRAP_ADMIN_KEY=validate-dummy-admin-key \
            SECRET_KEY=validate-dummy-secret-key-0123456789abcdef \
            docker-compose -f docker-compose.yml config -q 2>&1)"; then
    pass "docker-compose config -q ($(docker-compose version --short 2>/dev/null || echo '?'))"
  else
    fail "docker-compose config -q: $(echo "$out" | tr '\n' ' ')"
  fi
else
  skip "docker-compose config -q: docker-compose not installed and could not be installed"
fi

# ---- 2. structural checks -----------------------------------------------------
if ! command -v node >/dev/null 2>&1; then
  fail "structural checks: node not found"
else
  set +e
  node "$ROOT/scripts/validate-deploy.mjs" "$ROOT" >"$TMP/struct.out" 2>&1
  rc=$?
  set -e
  while IFS= read -r line; do
    case "$line" in
      PASS\ *) echo "$line" ;;
      FAIL\ *) echo "$line"; failures=$((failures + 1)) ;;
      *) echo "  $line" ;;
    esac
  done <"$TMP/struct.out"
  if [ "$rc" -ne 0 ] && ! grep -q '^FAIL ' "$TMP/struct.out"; then
    fail "structural checks: validate-deploy.mjs exited $rc"
  fi
fi

# ---- 3. nginx -t ----------------------------------------------------------------
NGINX="$(command -v nginx || true)"
[ -z "$NGINX" ] && [ -x /usr/sbin/nginx ] && NGINX=/usr/sbin/nginx
if [ -n "$NGINX" ]; then
  mkdir -p "$TMP/nginx/logs"
  # Compose service names do not resolve here: point them at local ports instead,
  # and keep pid/log files inside the temp prefix. Everything else is tested as is.
  sed -E \
    -e 's/\bregistry-([0-9]+):3000\b/127.0.0.1:300\1/g' \
    -e "s#^([[:space:]]*pid)[[:space:]].*#\\1 $TMP/nginx/nginx.pid;#" \
    -e "s#/var/log/nginx/#$TMP/nginx/logs/#g" \
    "$ROOT/deploy/nginx/nginx.conf" >"$TMP/nginx/nginx.conf"
  if grep -Eq '^[[:space:]]*server[[:space:]]+registry-' "$TMP/nginx/nginx.conf"; then
    fail "nginx -t: could not rewrite every upstream host"
  elif out="$("$NGINX" -t -q -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" 2>&1)"; then
    pass "nginx -t deploy/nginx/nginx.conf ($("$NGINX" -v 2>&1 | sed 's/.*version: //'), upstream hosts -> 127.0.0.1)"
  else
    fail "nginx -t: $(echo "$out" | tr '\n' ' ')"
  fi
else
  skip "nginx -t: nginx not installed (apt-get install -y nginx)"
fi

if [ "$failures" -gt 0 ]; then
  echo "validate-deploy: $failures check(s) failed"
  exit 1
fi
echo "validate-deploy: all checks passed"
