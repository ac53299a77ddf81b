package api

import (
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/onair/onair/internal/logsample"
	"github.com/onair/onair/internal/promreg"
	"github.com/onair/onair/internal/refusal"
)

// metrics are the onair_api_* series. Label lookups on a *Vec hash the
// label values on every call, so the per-route children are resolved once
// and kept in routeMetrics.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
	routes   sync.Map // route → *routeMetrics
}

type routeMetrics struct {
	route    string
	duration prometheus.Observer
	// codes[status-100] is the requests_total child for that status.
	codes [500]atomic.Pointer[counter]
}

type counter struct{ prometheus.Counter }

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "onair_api_requests_total",
			Help: "HTTP requests served, by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "onair_api_request_duration_seconds",
			Help:    "Time from receiving a request to writing its reply, by route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "onair_api_errors_total",
			Help: "Requests answered with an error, or with a degraded success (reason touch_failed, ratelimit_failed), by route and reason.",
		}, []string{"route", "reason"}),
	}
	var err error
	if m.requests, err = promreg.Register(reg, m.requests); err != nil {
		return nil, err
	}
	if m.duration, err = promreg.Register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.errors, err = promreg.Register(reg, m.errors); err != nil {
		return nil, err
	}
	// The registry may be shared with other packages or servers: a
	// collector someone already registered is fine.
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if _, err := promreg.Register(reg, c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) route(route string) *routeMetrics {
	if v, ok := m.routes.Load(route); ok {
		return v.(*routeMetrics)
	}
	rm := &routeMetrics{route: route, duration: m.duration.WithLabelValues(route)}
	v, _ := m.routes.LoadOrStore(route, rm)
	return v.(*routeMetrics)
}

func (m *metrics) count(rm *routeMetrics, status int) {
	if status < 100 || status > 599 {
		m.requests.WithLabelValues(rm.route, strconv.Itoa(status)).Inc()
		return
	}
	p := &rm.codes[status-100]
	c := p.Load()
	if c == nil {
		c = &counter{m.requests.WithLabelValues(rm.route, strconv.Itoa(status))}
		p.Store(c)
	}
	c.Inc()
}

// routeUnmatched labels requests no route matched (gin's 404 and 405), so a
// scan of random paths cannot blow up the label set.
const routeUnmatched = "unmatched"

// observe is the outermost middleware: it times the request, counts it by
// route and status, counts errors by reason and logs the request. Successes
// are logged at Debug only when enabled, so the hot path builds no log
// record; 4xx at Info, 5xx at Warn; 503s, 401s and unmatched routes at
// most once per logSample each (with the occurrences since the last line).
func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	d := time.Since(start)

	route := c.FullPath()
	if route == "" {
		route = routeUnmatched
	}
	rm := s.metrics.route(route)
	status := c.Writer.Status()
	rm.duration.Observe(d.Seconds())
	s.metrics.count(rm, status)

	level := slog.LevelDebug
	var e *refusal.Error
	if status >= 400 {
		level = slog.LevelInfo
		if status >= 500 {
			level = slog.LevelWarn
		}
		reason := http.StatusText(status)
		if e = errorFrom(c); e != nil {
			reason = e.Label()
		}
		s.metrics.errors.WithLabelValues(route, reason).Inc()
	}
	ctx := c.Request.Context()
	if !s.log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 9)
	var sampler *logsample.Sampler
	switch {
	case status == http.StatusServiceUnavailable:
		// a dependency is down: every request would log this line
		sampler = &s.faultLogs.unavailable
	case status == http.StatusUnauthorized || route == routeUnmatched:
		// anyone may send these as fast as they like; the errors counter
		// (by reason: no_token, bad_token, not_found) has every one
		sampler = &s.faultLogs.anonymous
	}
	if sampler != nil {
		n, ok := sampler.Due()
		if !ok {
			return
		}
		attrs = append(attrs, slog.Int("occurrences", n))
	}
	attrs = append(attrs,
		slog.String("method", c.Request.Method),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Duration("duration", d),
	)
	if cl, ok := ClaimsFrom(c); ok {
		attrs = append(attrs, slog.Uint64("user", cl.UserID))
	}
	if route == routeUnmatched {
		attrs = append(attrs, slog.String("path", c.Request.URL.Path))
	}
	if e != nil {
		attrs = append(attrs, slog.String("code", e.Code()), slog.String("message", e.Message))
		if e.Field != "" {
			attrs = append(attrs, slog.String("field", e.Field))
		}
	}
	s.log.LogAttrs(ctx, level, "request", attrs...)
}

// countDegraded counts a request that succeeded without one of its side
// effects (e.g. the daily Touch), under reason, on the current route.
func (s *Server) countDegraded(c *gin.Context, reason string) {
	s.metrics.errors.WithLabelValues(c.FullPath(), reason).Inc()
}

// recoverPanic turns a handler panic into a logged 500 instead of a dropped
// connection. http.ErrAbortHandler keeps its meaning (abort silently).
func (s *Server) recoverPanic(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			s.log.Error("handler panic", "route", c.FullPath(), "panic", r, "stack", string(debug.Stack()))
			if !c.Writer.Written() {
				WriteError(c, refusal.InternalFor("panic"))
			} else {
				c.Abort()
			}
		}
	}()
	c.Next()
}
