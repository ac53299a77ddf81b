package aggregate

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/testenv"
)

// BenchmarkWriteAmplification measures Redis writes and onair.progress rows
// per 100 progress reports when every (user, item) reports every 5 s, with
// the default flush intervals (Redis 100 ms, ClickHouse 1 s, progress 30 s).
// Time runs 50× faster than real (reports every 100 ms, flushes scaled
// alike), which keeps every ratio of report interval to flush window.
func BenchmarkWriteAmplification(b *testing.B) {
	const (
		scale    = 50
		users    = 200
		interval = 5 * time.Second / scale
		duration = 150 * time.Second / scale // 30 reports per user
	)
	for b.Loop() {
		h := newHarness(b, 4)
		reg := prometheus.NewRegistry()
		cfg := h.config()
		cfg.RedisFlush, cfg.ClickHouseFlush, cfg.ProgressFlush = 100*time.Millisecond/scale, time.Second/scale, 30*time.Second/scale
		cfg.Registerer = reg
		a, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()

		base := time.Now().Add(-time.Hour).UnixMilli()
		reports := 0
		tick := time.NewTicker(interval)
		for step := 0; time.Duration(step)*interval < duration; step++ {
			evs := make([]ingest.Event, users)
			for u := range evs {
				evs[u] = ingest.Event{Type: ingest.TypeProgress, UserID: uint64(u + 1), Biz: ingest.BizAudio, ItemID: 7,
					TS: base + int64(step)*5000, PositionMs: uint64(step+1) * 5000, DurationMs: 3_600_000}
			}
			h.produce(evs...)
			reports += users
			<-tick.C
		}
		tick.Stop()
		testenv.Wait(b, 30*time.Second, func() bool { return h.totalEvents() >= uint64(reports) }, "all reports in ClickHouse")
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		var m dto.Metric
		if err := a.m.redisWrites.Write(&m); err != nil {
			b.Fatal(err)
		}
		redisWrites := m.GetCounter().GetValue()
		// Rows inserted, from the aggregator's own histogram: a count() of
		// the table would also see ReplacingMergeTree's background merges.
		var hm dto.Metric
		if err := a.m.flushRows.WithLabelValues("progress").(prometheus.Histogram).Write(&hm); err != nil {
			b.Fatal(err)
		}
		rows := hm.GetHistogram().GetSampleSum()
		b.ReportMetric(100*redisWrites/float64(reports), "redis-writes/100reports")
		b.ReportMetric(100*float64(rows)/float64(reports), "progress-rows/100reports")
		b.ReportMetric(float64(reports), "reports")
	}
}
