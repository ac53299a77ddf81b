#!/usr/bin/env bash
# bench-ab.sh OLD_BIN NEW_BIN [SCENARIO] [PAIRS]: what a change costs on one
# HTTP scenario (default history). Runs `onair loadtest run --scenario
# SCENARIO --rate 0 --baseline --rounds 5` against a fresh `onair dev` of
# each binary in turn (old, new, old, new...: PAIRS times, default 2), on
# ports of its own so it does not meet `make bench`, and prints each run's
# rate, latency and the five rounds' ratios to the hello-world baseline.
# Build OLD_BIN from the commit before the change (git worktree + go build
# ./cmd/onair).
set -euo pipefail
old=${1:?old onair binary}
new=${2:?new onair binary}
scenario=${3:-history}
pairs=${4:-2}
dur=${BENCH_DURATION:-10s}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/onair-bench-ab.XXXXXX")
chmod 755 "$tmp" # the user postgres runs onair dev's PostgreSQL when this runs as root
pid=""
trap '[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT

run() { # run NAME BIN
	local name=$1 bin=$2 dir=$tmp/$1
	# shellcheck disable=SC2046
	env $(env | sed -n 's/^\(ONAIR_[A-Z0-9_]*\)=.*/-u \1/p') "$bin" dev --data-dir "$dir" --rate-limit 1000000 --event-rate 1000000 --service-event-rate 1000000 --log-level warn \
		--http-addr 127.0.0.1:28080 --dev-kafka-port 29092 --dev-redis-port 26379 \
		--dev-clickhouse-port 29000 --dev-clickhouse-http-port 28123 --dev-postgres-port 25432 >"$dir.out" 2>"$dir.log" &
	pid=$!
	for _ in $(seq 600); do
		grep -q "onair dev is up" "$dir.out" 2>/dev/null && break
		sleep 0.2
	done
	grep -q "onair dev is up" "$dir.out" || { echo "bench-ab: $name not up after 120 s" >&2; exit 1; }
	"$new" loadtest run --target http://127.0.0.1:28080 --token-secret "$(cat "$dir/auth.secret")" \
		--scenario "$scenario" --rate 0 --duration "$dur" --baseline --rounds 5 --report "$tmp/r-$name" 2>&1 |
		grep -E "^(rounds|vs baseline|latency|$scenario:)" | sed "s/^/$name: /"
	kill -TERM "$pid"
	wait "$pid" 2>/dev/null || true
	pid=""
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$pairs"); do
	run "old-$r" "$old"
	run "new-$r" "$new"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
