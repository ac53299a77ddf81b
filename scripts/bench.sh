#!/usr/bin/env bash
# make bench: short load tests of every scenario against an `onair dev` of
# its own (temp data dir, default ports), the hot-path Go benchmarks, and
# BENCHMARKS.md written from the reports by `onair loadtest table`.
# Takes about 9-10 minutes. BENCH_DURATION / BENCH_E2E_DURATION /
# BENCH_E2E_PACED_DURATION shorten or lengthen the runs. Cleans up (onair stopped, temp dir removed) on exit
# and on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${BENCH_DURATION:-10s}
E2E_DUR=${BENCH_E2E_DURATION:-20s}
E2E_PACED_DUR=${BENCH_E2E_PACED_DURATION:-60s}
BIN=bin/onair
started=$(date +%s)
load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)

for port in 8080 8081 19092 16379 19000 18123 15432; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		echo "bench: 127.0.0.1:$port is taken (another onair dev?); stop it first" >&2
		exit 1
	fi
done

go build -o "$BIN" ./cmd/onair

tmp=$(mktemp -d "${TMPDIR:-/tmp}/onair-bench.XXXXXX")
chmod 755 "$tmp" # the user postgres runs onair dev's PostgreSQL when this runs as root
pid=""
secret=""
stop_onair() {
	if [ -n "$pid" ]; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		pid=""
	fi
}
trap 'stop_onair; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$tmp"' EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM

# start_onair NAME ARGS...: onair dev on a fresh data dir $tmp/NAME, without
# the caller's ONAIR_* settings (they would move ports or the secret).
start_onair() {
	local name=$1
	shift
	# shellcheck disable=SC2046
	env $(env | sed -n 's/^\(ONAIR_[A-Z0-9_]*\)=.*/-u \1/p') "$BIN" dev --data-dir "$tmp/$name" --rate-limit 1000000 --event-rate 1000000 --service-event-rate 1000000 --log-level warn "$@" \
		>"$tmp/$name.out" 2>"$tmp/$name.log" &
	pid=$!
	for _ in $(seq 600); do
		grep -q "onair dev is up" "$tmp/$name.out" 2>/dev/null && break
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "bench: onair dev $* exited before it was up:" >&2
			tail -20 "$tmp/$name.log" >&2
			pid=""
			exit 1
		fi
		sleep 0.2
	done
	grep -q "onair dev is up" "$tmp/$name.out" || { echo "bench: onair dev not up after 120 s" >&2; exit 1; }
	secret=$(cat "$tmp/$name/auth.secret")
	echo "bench: onair dev $* is up (pid $pid)"
}

# lt NAME STACK ARGS...: `onair loadtest ARGS` into report dir $tmp/r/NAME.
status=0
lt() {
	local dir=$tmp/r/$1 stack=$2
	shift 2
	mkdir -p "$dir"
	echo "[$stack] onair loadtest $*" >"$dir/command.txt"
	echo "bench: onair loadtest $*"
	local rc=0
	ONAIR_AUTH_SECRET=$secret "$BIN" loadtest "$@" --report "$dir" || rc=$?
	echo "$rc" >"$dir/exit.txt"
	[ "$rc" = 0 ] || status=1
}

start_onair api --roles api
lt 1-baseline "dev --roles api" baseline --rate 0 --duration "$DUR"
# A progress request waits for Kafka's acknowledgement (a 2 ms linger
# batches concurrent requests into one produce), so 64 connections leave
# the cores idle between acks: 256 (for the baseline too) saturate them.
# Five alternating rounds of baseline and progress, the median reported:
# the shared machine's speed drifts by more than the margin to the target.
# --ceiling also sends the progress requests to the hello-world, which
# answers them unread: what their shape alone costs, apart from onair's work.
lt 2-progress "dev --roles api" run --scenario progress --rate 0 --workers 256 --duration "$DUR" --baseline --rounds 5 --ceiling
lt 3-batch "dev --roles api" run --scenario batch --batch 100 --rate 0 --duration "$DUR" --baseline
stop_onair

start_onair all
# History has a ratio target too, and a single pair moved it 0.54–0.74×
# between runs of the same commit: five rounds, the median, as for progress.
lt 4-history "dev" run --scenario history --rate 0 --duration "$DUR" --baseline --rounds 5
lt 5-continue "dev" run --scenario continue --rate 0 --duration "$DUR" --baseline --seed=false
lt 6-mixed "dev" run --scenario mixed --rate 0 --duration "$DUR" --baseline --seed=false
# Smart radio: the demo catalog and stations are put first (idempotent).
lt 6b-radio "dev" run --scenario radio --rate 0 --duration "$DUR" --baseline --rounds 3
stop_onair

# End to end, each on a fresh stack. Batches are listening sessions over 3
# items (--session-items 3: positions advance report by report, as a
# buffering app sends them); the last run is the worst case, every event its
# own item. The paced run offers 160 000 events/s for 60 s: the pipeline
# keeping up is what makes its visibility a figure; at max rate the
# aggregator runs behind by design and visibility measures its backlog.
start_onair e2e-paced
lt 7-e2e-paced "dev" e2e --rate 1600 --duration "$E2E_PACED_DUR" --batch 100 --session-items 3
stop_onair
start_onair e2e-max
lt 8-e2e-max "dev" e2e --rate 0 --duration "$E2E_DUR" --batch 100 --session-items 3
stop_onair
start_onair e2e-worst
lt 9-e2e-worst "dev" e2e --rate 0 --duration "$E2E_DUR" --batch 100
stop_onair

echo "bench: go test -bench (hot paths)"
go test -run '^$' -bench . -benchmem -benchtime 1s ./ingest ./api ./history ./aggregate ./recommend >"$tmp/gobench.txt" 2>&1 ||
	echo "(go test exited with status $?)" >>"$tmp/gobench.txt"

"$BIN" loadtest table --commit "$(git describe --always --dirty)" --started "$started" \
	--go-bench "$tmp/gobench.txt" --keep BENCHMARKS.md \
	--note "Stacks: \`[dev --roles api]\` rows ran against \`onair dev --roles api --rate-limit 1000000 --event-rate 1000000 --service-event-rate 1000000\` (API only, no aggregator consuming); \`[dev]\` rows against a fresh \`onair dev --rate-limit 1000000 --event-rate 1000000 --service-event-rate 1000000\` with every role, each on its own temp data dir (each e2e row on a stack of its own). \`continue\` and \`mixed\` reuse the users seeded by \`history\` on the same stack (10 000 users × 24 unfinished items). Load average (1/5/15 min) when the bench started: $load_at_start; the machine is shared, so other work may have run during the measurements. Total bench time: $(($(date +%s) - started)) s." \
	"$tmp"/r/* >"$tmp/BENCHMARKS.md"
mv "$tmp/BENCHMARKS.md" BENCHMARKS.md
echo "bench: wrote BENCHMARKS.md in $(($(date +%s) - started)) s"
exit "$status"
