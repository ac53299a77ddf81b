#!/usr/bin/env bash
# The soak row of BENCHMARKS.md: a fresh `onair dev` (default settings, temp
# data dir, ports of its own), then `onair loadtest soak` holding the mixed
# scenario (≈ 15 000 events/s at --rate 1500: progress, batches, history and
# continue reads) and sampling resident memory, Go heap, Redis memory, 5xx
# and p99 every minute. It fails when memory keeps rising after the warm-up
# or any request gets a 5xx. Usage:
#   scripts/soak.sh            (SOAK_DURATION=30m SOAK_RATE=1500 SOAK_WARMUP=10m)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${SOAK_DURATION:-30m}
RATE=${SOAK_RATE:-1500}
WARMUP=${SOAK_WARMUP:-10m}
BIN=bin/onair
HTTP=127.0.0.1:18780 OPS=127.0.0.1:18781 KAFKA=29792 REDIS=26779
go build -o "$BIN" ./cmd/onair

tmp=$(mktemp -d "${TMPDIR:-/tmp}/onair-soak.XXXXXX")
chmod 755 "$tmp" # the user postgres runs onair dev's PostgreSQL when this runs as root
pid=""
trap '[ -z "$pid" ] || { kill -TERM "$pid"; wait "$pid" || true; }; rm -rf "$tmp"' EXIT
"$BIN" dev --data-dir "$tmp/var" --http-addr "$HTTP" --ops-addr "$OPS" --dev-kafka-port "$KAFKA" --dev-redis-port "$REDIS" \
	--dev-clickhouse-port 29700 --dev-clickhouse-http-port 28723 --dev-postgres-port 25732 --log-level warn >"$tmp/out.log" 2>"$tmp/err.log" &
pid=$!
for _ in $(seq 120); do grep -q 'Ctrl-C' "$tmp/out.log" && break; sleep 1; done
grep -q 'Ctrl-C' "$tmp/out.log" || { echo "soak: onair dev did not come up" >&2; tail "$tmp/err.log" >&2; exit 1; }

echo "# $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# onair dev (defaults) + onair loadtest soak --scenario mixed --rate $RATE --duration $DUR --warmup $WARMUP"
mkdir -p var/loadtest
status=0
ONAIR_AUTH_SECRET=$(cat "$tmp/var/auth.secret") "$BIN" loadtest soak --scenario mixed --rate "$RATE" --duration "$DUR" \
	--warmup "$WARMUP" --target "http://$HTTP" --ops "http://$OPS" --redis-addr "127.0.0.1:$REDIS" \
	--report "var/loadtest/soak-$(date +%Y%m%d-%H%M%S)" || status=$?
echo "# onair dev warnings during the soak: $(grep -c 'level=WARN' "$tmp/err.log" || true)"
grep -o 'msg="[^"]*"' "$tmp/err.log" | sort | uniq -c | sort -rn | head -5 || true
exit $status
