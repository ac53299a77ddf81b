package aggregate

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// An INSERT whose client died after sending its last block still completes
// on the server. A watermark read while such an orphan runs is stale, and
// resuming from it would insert the orphan's rows twice. So every events
// INSERT carries a query_id naming its Kafka partitions, and settle waits
// until no INSERT for the given partitions is running before a watermark is
// trusted (on assignment, and after an INSERT error).

const queryIDPrefix = "onair-events-"

var pid = os.Getpid()

var querySeq atomic.Uint64

// eventsQueryID returns "onair-events-p<a>_<b>_..-<pid>-<seq>".
func eventsQueryID(parts []*partition) string {
	var b strings.Builder
	b.WriteString(queryIDPrefix)
	b.WriteByte('p')
	first := true
	for _, p := range parts {
		if len(p.events) == 0 {
			continue
		}
		if !first {
			b.WriteByte('_')
		}
		first = false
		b.WriteString(strconv.Itoa(int(p.id)))
	}
	fmt.Fprintf(&b, "-%d-%d", pid, querySeq.Add(1))
	return b.String()
}

// queryPartitions parses the partitions out of an eventsQueryID.
func queryPartitions(id string) []int32 {
	rest, ok := strings.CutPrefix(id, queryIDPrefix+"p")
	if !ok {
		return nil
	}
	list, _, _ := strings.Cut(rest, "-")
	var out []int32
	for _, f := range strings.Split(list, "_") {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, int32(n))
		}
	}
	return out
}

// settle waits until ClickHouse runs no events INSERT touching any of parts.
func (a *Aggregator) settle(ctx context.Context, parts []int32) error {
	want := make(map[int32]bool, len(parts))
	for _, p := range parts {
		want[p] = true
	}
	for {
		busy, err := a.insertsRunning(ctx, want)
		if err != nil || !busy {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (a *Aggregator) insertsRunning(ctx context.Context, want map[int32]bool) (bool, error) {
	rows, err := a.cfg.ClickHouse.Query(ctx, "SELECT query_id FROM system.processes WHERE startsWith(query_id, '"+queryIDPrefix+"')")
	if err != nil {
		return false, fmt.Errorf("cannot list running inserts: %w", err)
	}
	defer rows.Close()
	busy := false
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return false, err
		}
		for _, p := range queryPartitions(id) {
			if want[p] {
				busy = true
			}
		}
	}
	return busy, rows.Err()
}

// withQueryID tags ctx so the INSERT it runs shows up under id.
func withQueryID(ctx context.Context, id string) context.Context {
	return clickhouse.Context(ctx, clickhouse.WithQueryID(id))
}
