package aggregate

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/onair/onair/internal/promreg"
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
	wbEntries    prometheus.Histogram
	wbSeconds    prometheus.Histogram
	sinkErrors   *prometheus.CounterVec
	kafkaErrors  prometheus.Counter
	retries      prometheus.Counter
	visibility   prometheus.Histogram
	redisLosses  prometheus.Counter
	lostClaims   prometheus.Counter
	retained     *prometheus.GaugeVec
}

// newMetrics makes the metrics and registers them on reg (nil: none); a
// registry shared with another Aggregator shares the series.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
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
			Help: "Rows per ClickHouse INSERT, by table (events, progress).", Buckets: prometheus.ExponentialBuckets(1, 4, 10)}, []string{"table"}),
		flushSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "onair_aggregate_flush_duration_seconds",
			Help: "Duration of one ClickHouse INSERT, by table (events, progress).", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"table"}),
		wbEntries: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "onair_aggregate_writeback_entries",
			Help: "History entries per Redis write-back.", Buckets: prometheus.ExponentialBuckets(1, 4, 10)}),
		wbSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "onair_aggregate_writeback_duration_seconds",
			Help: "Duration of one Redis write-back.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
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
		retained: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "onair_aggregate_retained_entries",
			Help: "What the aggregator holds in memory, by state (see DESIGN.md, the memory bound): dirty, held, retired and progress are history entries, events are event rows."}, []string{"state"}),
	}
	return m, m.register(reg)
}

// register swaps each collector for the one reg already has, if any.
func (m *metrics) register(reg prometheus.Registerer) error {
	var errs []error
	reg1 := func(c prometheus.Collector) prometheus.Collector {
		c, err := promreg.Register(reg, c)
		errs = append(errs, err)
		return c
	}
	m.events = reg1(m.events).(*prometheus.CounterVec)
	m.reports = reg1(m.reports).(prometheus.Counter)
	m.redisWrites = reg1(m.redisWrites).(prometheus.Counter)
	m.skipped = reg1(m.skipped).(*prometheus.CounterVec)
	m.duplicates = reg1(m.duplicates).(prometheus.Counter)
	m.dropped = reg1(m.dropped).(prometheus.Counter)
	m.lag = reg1(m.lag).(*prometheus.GaugeVec)
	m.flushRows = reg1(m.flushRows).(*prometheus.HistogramVec)
	m.flushSeconds = reg1(m.flushSeconds).(*prometheus.HistogramVec)
	m.wbEntries = reg1(m.wbEntries).(prometheus.Histogram)
	m.wbSeconds = reg1(m.wbSeconds).(prometheus.Histogram)
	m.sinkErrors = reg1(m.sinkErrors).(*prometheus.CounterVec)
	m.kafkaErrors = reg1(m.kafkaErrors).(prometheus.Counter)
	m.retries = reg1(m.retries).(prometheus.Counter)
	m.visibility = reg1(m.visibility).(prometheus.Histogram)
	m.redisLosses = reg1(m.redisLosses).(prometheus.Counter)
	m.lostClaims = reg1(m.lostClaims).(prometheus.Counter)
	m.retained = reg1(m.retained).(*prometheus.GaugeVec)
	return errors.Join(errs...)
}

func itoa32(i int32) string { return strconv.FormatInt(int64(i), 10) }
