#!/usr/bin/env bash
# The services and system tools the test suite uses for real, installed and
# started when missing; idempotent and quick when all is in place.
#   PostgreSQL : a throwaway cluster on loopback (catalog and state on PostgreSQL)
#   espeak-ng  : speaks test sentences for the transcription tests
#   chromium, chromium-driver : a headless browser for the dashboard's browser tests
#   nodejs, npm : install the IIIF viewer pinned in viewer/ (npm ci), which the viewer tests open
# The last line printed is the PostgreSQL URL the tests use.
set -euo pipefail

PG_PORT="${ARCHIVIST_TEST_PGPORT:-55432}"
PG_DATA="${ARCHIVIST_TEST_PGDATA:-/tmp/archivist-test-pg}"
PACKAGES=(postgresql espeak-ng chromium chromium-driver nodejs npm)

missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (Debian packages; one of ${PACKAGES[*]})" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# The viewer: reinstalled only when its lock changed since the last install (npm's own record).
VIEWER="$(cd "$(dirname "$0")/../.." && pwd)/viewer"
if [ ! -f "$VIEWER/node_modules/.package-lock.json" ] || [ "$VIEWER/package-lock.json" -nt "$VIEWER/node_modules/.package-lock.json" ]; then
  echo "installing the IIIF viewer (npm ci in $VIEWER)" >&2
  npm ci --prefix "$VIEWER" --ignore-scripts --no-audit --no-fund >&2
fi

PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi
}
if ! "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
  rm -rf "$PG_DATA"
  mkdir -p "$PG_DATA"
  [ "$(id -u)" -eq 0 ] && chown postgres "$PG_DATA"
  as_postgres "'$PG_BIN/initdb' -D '$PG_DATA' -A trust -U postgres --no-sync" >/dev/null
  as_postgres "'$PG_BIN/pg_ctl' -D '$PG_DATA' -l '$PG_DATA/server.log' -w start \
    -o '-p $PG_PORT -c listen_addresses=127.0.0.1 -k $PG_DATA -c fsync=off -c max_connections=200'" >/dev/null
fi
echo "postgresql+psycopg://postgres@127.0.0.1:${PG_PORT}/postgres"
