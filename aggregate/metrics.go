package aggregate

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	events       *prometheus.CounterVec
	reports      prometheus.Counter
	redisWrites  prometheus.Counter
	skipped      *prometheus.CounterVec
	duplicates   prometheus.Counter
	dropped      prometheus.Counter
	lag          *prometheus.GaugeVec
	flushRows    *prometheus.HistogramVec
	flushSeconds *prometheus.HistogramVec
	sinkErrors   *prometheus.CounterVec
	kafkaErrors  prometheus.Counter
	retries      prometheus.Counter
	visibility   prometheus.Histogram
	redisLosses  prometheus.Counter
	lostClaims   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onair_aggregate_events_total",
			Help: "Events taken in from Kafka, by type."}, []string{"type"}),
		reports: prometheus.NewCounter(prometheus.CounterOpts{Name: "onair_aggregate_progress_reports_total",
			Help: "Progress and play reports collapsed by the LWW maps."}),
		redisWrites: prometheus.NewCounter(prometheus.CounterOpts{Name: "onair_aggregate_redis_writes_total",
			Help: "History entries written back to Redis; divided by progress_reports_total it is the write amplification."}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onair_aggregate_records_skipped_total",
			Help: "Records not aggregated, by reason: replayed (already in ClickHouse) or undecodable."}, []string{"reason"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "onair_aggregate_duplicate_events_total",
			Help: "Client retries (same event_id) counted once and not inserted again."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "onair_aggregate_unflushed_on_revoke_total",
			Help: "Buffered events left to the next partition owner to replay because they could not be flushed."}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "onair_aggregate_lag_records",
			Help: "Records behind the partition's high watermark."}, []string{"partition"}),
		flushRows: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "onair_aggregate_flush_rows",
			Help: "Rows per ClickHouse INSERT, by table.", Buckets: prometheus.ExponentialBuckets(1, 4, 10)}, []string{"table"}),
		flushSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "onair_aggregate_flush_duration_seconds",
			Help: "Duration of one flush, by sink.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"sink"}),
		sinkErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onair_aggregate_sink_errors_total",
			Help: "Failed sink writes, by sink."}, []string{"sink"}),
		kafkaErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "onair_aggregate_kafka_errors_total",
			Help: "Kafka fetch and commit errors."}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{Name: "onair_aggregate_flush_retries_total",
			Help: "Flushes retried after a sink error (fetching paused meanwhile)."}),
		visibility: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "onair_aggregate_visibility_seconds",
			Help: "From Kafka append to the Redis write-back of the newest report of a history entry.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}),
		redisLosses: prometheus.NewCounter(prometheus.CounterOpts{Name: "onair_aggregate_redis_losses_total",
			Help: "Losses of Redis data seen (the epoch sentinel changed); each time the history not yet in ClickHouse was written back again."}),
		lostClaims: prometheus.NewCounter(prometheus.CounterOpts{Name: "onair_aggregate_dedupe_claims_from_clickhouse_total",
			Help: "Client event ids whose claim Redis had lost and onair.events still held: retries counted once after a loss."}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.reports, m.redisWrites, m.skipped, m.duplicates, m.dropped, m.lag,
			m.flushRows, m.flushSeconds, m.sinkErrors, m.kafkaErrors, m.retries, m.visibility, m.redisLosses, m.lostClaims)
	}
	return m
}

func itoa32(i int32) string { return strconv.FormatInt(int64(i), 10) }
