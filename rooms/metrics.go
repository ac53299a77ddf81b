package rooms

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/onair/onair/internal/promreg"
)

type metrics struct {
	rejected  *prometheus.CounterVec // reason
	accepted  *prometheus.CounterVec // type
	frames    *prometheus.CounterVec // type
	failures  *prometheus.CounterVec // what
	gifts     *prometheus.CounterVec // outcome: counted, fenced, retry
	refreshes prometheus.Counter
	rebuilds  prometheus.Counter
	// registryRebuilds: the registry's rebuilds of the rooms' hot copy.
	registryRebuilds prometheus.Counter
}

// newMetrics makes the metrics and registers them on reg (nil: none); a
// registry shared with another Board shares the series.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onair_board_rejected_total",
			Help: "Danmaku, gifts, room and PK requests refused, by reason."}, []string{"reason"}),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onair_board_accepted_total",
			Help: "Danmaku and gifts accepted into the events topic, by type."}, []string{"type"}),
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onair_board_frames_total",
			Help: "Frames published to the pushes topic, by type."}, []string{"type"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onair_board_failures_total",
			Help: "Failed Redis, Kafka or ClickHouse operations, by what failed."}, []string{"what"}),
		gifts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onair_board_gifts_total",
			Help: "Gift records the aggregator handed to the rankings, by outcome (counted, fenced = a replay, retry = a client retry)."}, []string{"outcome"}),
		refreshes: prometheus.NewCounter(prometheus.CounterOpts{Name: "onair_board_plays_refreshes_total",
			Help: "Play leaderboard refreshes from ClickHouse."}),
		rebuilds: prometheus.NewCounter(prometheus.CounterOpts{Name: "onair_board_ranking_rebuilds_total",
			Help: "Rebuilds of some partitions' share of the room rankings from ClickHouse after a Redis loss."}),
		registryRebuilds: prometheus.NewCounter(prometheus.CounterOpts{Name: "onair_board_registry_rebuilds_total",
			Help: "Rebuilds of the rooms' hot copy (open rooms, running PKs) from PostgreSQL: at start, after a Redis loss or a failed write."}),
	}
	var errs []error
	vec := func(c *prometheus.CounterVec) *prometheus.CounterVec {
		c, err := promreg.Register(reg, c)
		errs = append(errs, err)
		return c
	}
	m.rejected, m.accepted, m.frames = vec(m.rejected), vec(m.accepted), vec(m.frames)
	m.failures, m.gifts = vec(m.failures), vec(m.gifts)
	var err1, err2, err3 error
	m.refreshes, err1 = promreg.Register(reg, m.refreshes)
	m.rebuilds, err2 = promreg.Register(reg, m.rebuilds)
	m.registryRebuilds, err3 = promreg.Register(reg, m.registryRebuilds)
	return m, errors.Join(append(errs, err1, err2, err3)...)
}
