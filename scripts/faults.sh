#!/usr/bin/env bash
# Fault figures of BENCHMARKS.md ("Faults"): starts the real dev stack
# (bin/onair dev, as `make run` does, on a temp data dir and the default
# ports), then `onair loadtest faults` freezes (SIGSTOP) and kills each of its
# redis-server and clickhouse-server under a steady load of reports and
# history reads, and prints the table. onair runs with
# --history-max-entries 5 and the reads use pages of 4, so a user's second
# page comes from ClickHouse (deep pages); --progress-flush 1s puts progress
# there quickly. Extra arguments go to `onair loadtest faults` (e.g.
# --hold 10s). Takes about a minute; cleans up on exit and on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=bin/onair
for port in 8080 19092 16379 19000 18123 15432; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		echo "faults: 127.0.0.1:$port is taken (another onair dev?); stop it first" >&2
		exit 1
	fi
done
go build -o "$BIN" ./cmd/onair

tmp=$(mktemp -d "${TMPDIR:-/tmp}/onair-faults.XXXXXX")
chmod 755 "$tmp" # the user postgres runs onair dev's PostgreSQL when this runs as root
pid=""
stop_onair() {
	if [ -n "$pid" ]; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		pid=""
	fi
}
trap 'stop_onair; [ -n "${FAULTS_KEEP:-}" ] || rm -rf "$tmp"' EXIT
trap 'echo "faults: interrupted" >&2; exit 130' INT TERM

# Without the caller's ONAIR_* settings (they would move ports or the secret).
# shellcheck disable=SC2046
env $(env | sed -n 's/^\(ONAIR_[A-Z0-9_]*\)=.*/-u \1/p') "$BIN" dev --data-dir "$tmp/var" --log-level warn \
	--history-max-entries 5 --progress-flush 1s >"$tmp/onair.out" 2>"$tmp/onair.log" &
pid=$!
for _ in $(seq 600); do
	grep -q "onair dev is up" "$tmp/onair.out" 2>/dev/null && break
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "faults: onair dev exited before it was up:" >&2
		tail -20 "$tmp/onair.log" >&2
		pid=""
		exit 1
	fi
	sleep 0.2
done
grep -q "onair dev is up" "$tmp/onair.out" || { echo "faults: onair dev not up after 120 s" >&2; exit 1; }
echo "faults: onair dev is up (pid $pid); machine load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

rc=0
ONAIR_AUTH_SECRET=$(cat "$tmp/var/auth.secret") "$BIN" loadtest faults --pid "$pid" --page-limit 4 "$@" || rc=$?
echo "faults: machine load $(cut -d' ' -f1-3 /proc/loadavg); onair's warnings and errors:" >&2
grep -E "level=(WARN|ERROR)" "$tmp/onair.log" | cut -c1-300 | tail -40 >&2 || true
exit $rc
