#!/usr/bin/env bash
# The live-room figures of BENCHMARKS.md ("Live rooms: WebSocket"): an
# `onair dev --pprof` of its own (temp data dir, ports of its own), then
# `onair loadtest ws` rounds that alternate the same-run baseline (a bare
# gorilla/websocket broadcaster in the load generator, --baseline) with
# onair, for each viewer count. Usage:
#   scripts/bench-ws.sh [CLIENTS...]      (default: 5000 20000)
# BENCH_WS_ROUNDS (default 3), BENCH_WS_RATE (20), BENCH_WS_DURATION (10s),
# BENCH_WS_SOURCE (kafka: frames produced to `pushes`; api: POST
# /v1/rooms/{id}/danmaku, latency from the request to the frame).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${BENCH_WS_ROUNDS:-3}
RATE=${BENCH_WS_RATE:-20}
DUR=${BENCH_WS_DURATION:-10s}
SOURCE=${BENCH_WS_SOURCE:-kafka}
CLIENTS=("$@")
[ ${#CLIENTS[@]} -gt 0 ] || CLIENTS=(5000 20000)
BIN=bin/onair
HTTP=127.0.0.1:18680 OPS=127.0.0.1:18681 KAFKA=29692 REDIS=26679
go build -o "$BIN" ./cmd/onair

tmp=$(mktemp -d "${TMPDIR:-/tmp}/onair-bench-ws.XXXXXX")
chmod 755 "$tmp" # the user postgres runs onair dev's PostgreSQL when this runs as root
pid=""
trap '[ -z "$pid" ] || { kill -TERM "$pid"; wait "$pid" || true; }; rm -rf "$tmp"' EXIT
"$BIN" dev --pprof --data-dir "$tmp/var" --http-addr "$HTTP" --ops-addr "$OPS" --dev-kafka-port "$KAFKA" --dev-redis-port "$REDIS" \
	--dev-clickhouse-port 29600 --dev-clickhouse-http-port 28623 --dev-postgres-port 25632 --log-level warn >"$tmp/out.log" 2>"$tmp/err.log" &
pid=$!
for _ in $(seq 120); do grep -q 'Ctrl-C' "$tmp/out.log" && break; sleep 1; done
grep -q 'Ctrl-C' "$tmp/out.log" || { echo "bench-ws: onair dev did not come up" >&2; tail "$tmp/err.log" >&2; exit 1; }

echo "# $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD), source $SOURCE, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
room=910000
for n in "${CLIENTS[@]}"; do
	for r in $(seq "$ROUNDS"); do
		for mode in baseline onair; do
			room=$((room + 1))
			args=(--clients "$n" --room "$room" --rate "$RATE" --duration "$DUR")
			if [ "$mode" = baseline ]; then args+=(--baseline); else args+=(--source "$SOURCE"); fi
			echo "## $mode, $n viewers, round $r (load $(cut -d' ' -f1-3 /proc/loadavg))"
			ONAIR_AUTH_SECRET=$(cat "$tmp/var/auth.secret") "$BIN" loadtest ws "${args[@]}" \
				--target "http://$HTTP" --ops "http://$OPS" --kafka "127.0.0.1:$KAFKA" --redis "127.0.0.1:$REDIS" 2>&1 | grep -v '^ws: [0-9]* of' || true
		done
	done
done
