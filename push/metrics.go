package push

import (
	rtmetrics "runtime/metrics"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's onair_push_* series. Every failure path bumps
// one of them where it is handled (and logs the reason).
type metrics struct {
	conns       prometheus.Gauge
	rooms       prometheus.Gauge
	upgrades    *prometheus.CounterVec // by result
	disconnects *prometheus.CounterVec // by reason
	stepDowns   *prometheus.CounterVec // by the level stepped down to
	recoveries  prometheus.Counter
	records     *prometheus.CounterVec // consumed pushes records, by outcome
	frames      prometheus.Counter     // frames written to connections
	batches     prometheus.Counter     // batch frames encoded (per level)
	dropped     *prometheus.CounterVec // frames a connection did not get, by class and reason
	giftResends prometheus.Counter
	giftUnacked prometheus.Counter
	errors      *prometheus.CounterVec // by what failed
	fanoutDelay prometheus.Histogram
	heapLive    prometheus.GaugeFunc
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		conns: prometheus.NewGauge(prometheus.GaugeOpts{Name: "onair_push_connections",
			Help: "Open WebSocket connections on this node."}),
		rooms: prometheus.NewGauge(prometheus.GaugeOpts{Name: "onair_push_rooms",
			Help: "Rooms with at least one viewer on this node."}),
		upgrades: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onair_push_upgrades_total",
			Help: "GET /v1/ws requests, by result (ok, bad_request, origin, not_found, shutting_down, full, user_node and user_cluster: the per-user limits, redis, failed)."}, []string{"result"}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onair_push_disconnects_total",
			Help: "Connections closed, by close reason (see the close-code table)."}, []string{"reason"}),
		stepDowns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onair_push_step_downs_total",
			Help: "Slow connections stepped down, by the level they stepped down to (no_danmaku, state_only)."}, []string{"to"}),
		recoveries: prometheus.NewCounter(prometheus.CounterOpts{Name: "onair_push_recoveries_total",
			Help: "Stepped-down connections whose queue drained, back to every frame."}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onair_push_records_total",
			Help: "Records consumed from the pushes topic, by outcome (fanned_out, no_viewers, bad)."}, []string{"outcome"}),
		frames: prometheus.NewCounter(prometheus.CounterOpts{Name: "onair_push_frames_written_total",
			Help: "WebSocket frames written to connections (batches, snapshots, re-sent gifts, pongs)."}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{Name: "onair_push_batches_encoded_total",
			Help: "Batch frames encoded: at most one per room, tick and level, whatever the viewer count."}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onair_push_frames_dropped_total",
			Help: "Frames not delivered to a connection, by class and reason (room_flood, stepped_down, closed)."}, []string{"class", "reason"}),
		giftResends: prometheus.NewCounter(prometheus.CounterOpts{Name: "onair_push_gift_resends_total",
			Help: "Gift frames re-sent because the client did not ack them in time."}),
		giftUnacked: prometheus.NewCounter(prometheus.CounterOpts{Name: "onair_push_gift_unacked_total",
			Help: "Gift frames still not acked after the re-send (given up)."}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onair_push_errors_total",
			Help: "Failures, by what failed (snapshot, online, user_conns, kafka)."}, []string{"op"}),
		fanoutDelay: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "onair_push_fanout_delay_seconds",
			Help:    "From a record's Kafka timestamp to its batch being queued on the room's connections.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		heapLive: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "onair_push_heap_live_bytes",
			Help: "Live heap after the last GC (runtime/metrics /gc/heap/live:bytes): with go_memstats_stack_inuse_bytes, what `onair loadtest ws` divides by the connections for memory per connection."},
			heapLive),
	}
	if reg != nil {
		reg.MustRegister(m.heapLive, m.conns, m.rooms, m.upgrades, m.disconnects, m.stepDowns, m.recoveries, m.records,
			m.frames, m.batches, m.dropped, m.giftResends, m.giftUnacked, m.errors, m.fanoutDelay)
	}
	return m
}

var classNames = [...]string{classDanmaku: "danmaku", classGift: "gift", classState: "state"}

func heapLive() float64 {
	s := []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}}
	rtmetrics.Read(s)
	if s[0].Value.Kind() != rtmetrics.KindUint64 {
		return 0
	}
	return float64(s[0].Value.Uint64())
}
