package recommend

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the onair_recommend_* series.
type metrics struct {
	changes       prometheus.Counter
	rebuilds      *prometheus.CounterVec
	merged        prometheus.Counter
	rebuildSecs   prometheus.Histogram
	fallback      prometheus.Counter
	items         prometheus.Gauge
	records       *prometheus.CounterVec
	errors        *prometheus.CounterVec
	listenerEvts  prometheus.Counter
	catalogPublic prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		changes: prometheus.NewCounter(prometheus.CounterOpts{Name: "onair_recommend_changes_received_total",
			Help: "Catalog and schedule changes delivered to station mailboxes (one per change per station it may touch)."}),
		rebuilds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onair_recommend_rebuilds_total",
			Help: "Playlist builds run by station actors, by cause: change (a mailbox wake-up), boundary (the next daypart built ahead), start."}, []string{"cause"}),
		merged: prometheus.NewCounter(prometheus.CounterOpts{Name: "onair_recommend_rebuilds_merged_total",
			Help: "Changes that did not cause a rebuild of their own because one was already pending (changes_received = rebuilds{cause=change} + merged)."}),
		rebuildSecs: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "onair_recommend_rebuild_duration_seconds",
			Help: "Duration of one station rebuild (current and next daypart).", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		fallback: prometheus.NewCounter(prometheus.CounterOpts{Name: "onair_recommend_fallback_builds_total",
			Help: "Playlist requests whose daypart had no list built ahead (built on the request path instead)."}),
		items: prometheus.NewGauge(prometheus.GaugeOpts{Name: "onair_recommend_catalog_items",
			Help: "Items in this node's in-memory catalog."}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onair_recommend_catalog_records_total",
			Help: "Records read from the catalog topic, by kind (item, station, invalid)."}, []string{"kind"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onair_recommend_errors_total",
			Help: "Failures, by operation (produce, fetch, topic, listener_state, listener_apply, clickhouse, affinity)."}, []string{"op"}),
		listenerEvts: prometheus.NewCounter(prometheus.CounterOpts{Name: "onair_recommend_listener_events_total",
			Help: "Play, skip and progress events of catalog items applied to listener state in Redis."}),
		catalogPublic: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "onair_recommend_snapshot_duration_seconds",
			Help: "Time to index a new catalog snapshot.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.changes, m.rebuilds, m.merged, m.rebuildSecs, m.fallback, m.items,
			m.records, m.errors, m.listenerEvts, m.catalogPublic} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("recommend: register metrics: %w", err)
			}
		}
	}
	return m, nil
}
