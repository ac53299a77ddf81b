#!/usr/bin/env bash
# bench-redisloss.sh OLD_BIN NEW_BIN [ROUNDS]: the cost of Redis-loss
# recovery (held states, epoch checks, cold-row joins) on the aggregator's
# path. Runs `onair loadtest e2e --rate 0` (max rate, session batches)
# against a fresh `onair dev` of each binary in turn, ROUNDS times
# (default 2), on ports of its own so it does not meet `make bench`, and
# prints each run's end-to-end rate and visibility. Build OLD_BIN from the
# commit before the change (git worktree + go build ./cmd/onair).
set -euo pipefail
old=${1:?old onair binary}
new=${2:?new onair binary}
rounds=${3:-2}
dur=${BENCH_E2E_DURATION:-15s}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/onair-bench-redisloss.XXXXXX")
chmod 755 "$tmp" # the user postgres runs onair dev's PostgreSQL when this runs as root
pid=""
trap '[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT

run() { # run NAME BIN
	local name=$1 bin=$2 dir=$tmp/$1
	env $(env | sed -n 's/^\(ONAIR_[A-Z0-9_]*\)=.*/-u \1/p') "$bin" dev --data-dir "$dir" --rate-limit 1000000 --event-rate 1000000 --service-event-rate 1000000 --log-level warn \
		--http-addr 127.0.0.1:28080 --dev-kafka-port 29092 --dev-redis-port 26379 \
		--dev-clickhouse-port 29000 --dev-clickhouse-http-port 28123 --dev-postgres-port 25432 >"$dir.out" 2>"$dir.log" &
	pid=$!
	for _ in $(seq 600); do
		grep -q "onair dev is up" "$dir.out" 2>/dev/null && break
		sleep 0.2
	done
	ONAIR_AUTH_SECRET=$(cat "$dir/auth.secret") "$new" loadtest e2e --target http://127.0.0.1:28080 \
		--clickhouse 127.0.0.1:29000 --rate 0 --duration "$dur" --batch 100 --session-items 3 \
		--report "$tmp/r-$name" 2>&1 | grep -iE "events/s|visibility|missing" | sed "s/^/$name: /"
	kill -TERM "$pid"
	wait "$pid" 2>/dev/null || true
	pid=""
}

for r in $(seq "$rounds"); do
	run "old-$r" "$old"
	run "new-$r" "$new"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
