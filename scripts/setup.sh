#!/usr/bin/env bash
# setup.sh installs what onair needs from Debian's packages when it is missing.
# Idempotent: when everything is present it only checks and exits in well under a second.
set -euo pipefail

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v clickhouse-server >/dev/null 2>&1 || need+=(clickhouse-server)
command -v clickhouse-client >/dev/null 2>&1 || need+=(clickhouse-client)
# PostgreSQL (Debian's postgresql, 15 on bookworm) is onair's system of record;
# Debian keeps its binaries in /usr/lib/postgresql/<version>/bin, off PATH.
command -v postgres >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
# Debian's Chromium drives the browser tests of the live-room and analytics pages (chromedp).
command -v chromium >/dev/null 2>&1 || need+=(chromium)

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]} from Debian's packages"
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "setup: need root or sudo to install ${need[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  # The packages' own services must not start: onair runs its own child servers.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $sudo apt-get update -qq || true
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Debian's redis-server package starts a system service on 6379; onair never uses it.
  $sudo service redis-server stop >/dev/null 2>&1 || true
  $sudo service clickhouse-server stop >/dev/null 2>&1 || true
  $sudo service postgresql stop >/dev/null 2>&1 || true
fi

command -v go >/dev/null 2>&1 || { echo "setup: Go is required (https://go.dev/dl)" >&2; exit 1; }
go mod download
