// Package lifecycle ends data: retention drops whole months of onair.events
// and its rollups once they are older than --retention (Retention, run by
// the aggregate role), and erasure removes one user from everything onair
// keeps (Eraser, behind POST /v1/admin/users/{id}/erase). docs/operations.md
// ("Data lifecycle") is the operator's side of both.
//
// Both delete rows that carry the aggregator's exactly-once resume point
// (the highest kafka_offset per Kafka partition in onair.events). Before
// either deletes, it copies that point into onair.aggregate_offsets (sink
// "events"), which the aggregator reads beside onair.events: a resume point
// never moves back, so nothing is replayed twice into ClickHouse.
package lifecycle

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/onair/onair/internal/promreg"
)

// SinkEventsFloor is the sink under which onair.aggregate_offsets keeps the
// resume points copied before rows of onair.events are deleted; package
// aggregate reads it.
const SinkEventsFloor = "events"

// keepResumePoints copies, per Kafka partition, the highest kafka_offset in
// db.events to db.aggregate_offsets (topic, sink SinkEventsFloor).
func keepResumePoints(ctx context.Context, ch driver.Conn, db, topic string) error {
	rows, err := ch.Query(ctx, "SELECT kafka_partition, max(kafka_offset) FROM "+db+".events GROUP BY kafka_partition")
	if err != nil {
		return fmt.Errorf("cannot read the resume points of %s.events: %w", db, err)
	}
	var topics, sinks []string
	var parts []uint32
	var offs []uint64
	for rows.Next() {
		var p uint32
		var off uint64
		if err := rows.Scan(&p, &off); err != nil {
			rows.Close()
			return err
		}
		topics, sinks, parts, offs = append(topics, topic), append(sinks, SinkEventsFloor), append(parts, p), append(offs, off)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(parts) == 0 {
		return nil
	}
	b, err := ch.PrepareBatch(ctx, "INSERT INTO "+db+".aggregate_offsets (topic, partition, sink, offset)")
	if err != nil {
		return fmt.Errorf("cannot keep %d resume points: %w", len(parts), err)
	}
	for i, c := range []any{topics, parts, sinks, offs} {
		if err := b.Column(i).Append(c); err != nil {
			_ = b.Abort()
			return err
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot keep %d resume points: %w", len(parts), err)
	}
	return nil
}

type metrics struct {
	dropped  *prometheus.CounterVec // table
	failures *prometheus.CounterVec // op
	erasures prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	var m metrics
	var err error
	if m.dropped, err = promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onair_lifecycle_partitions_dropped_total",
		Help: "Monthly partitions dropped by --retention, by table."}, []string{"table"})); err != nil {
		return nil, err
	}
	if m.failures, err = promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onair_lifecycle_failures_total",
		Help: "Retention runs and erasure steps that failed, by step."}, []string{"step"})); err != nil {
		return nil, err
	}
	if m.erasures, err = promreg.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "onair_lifecycle_erasures_total",
		Help: "User erasures carried out (each call counts, repeats included)."})); err != nil {
		return nil, err
	}
	return &m, nil
}
