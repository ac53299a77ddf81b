package api

import (
	"context"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/onair/onair/internal/logsample"
)

// Deadlines of the dependency calls on request paths. A stalled Redis or
// ClickHouse costs a request at most this much before it is answered
// without it (ingest) or with 503 (history), and only until the circuit
// breakers (internal/breaker, wired in cmd/onair) open; then calls fail at
// once. docs/api.md, "Behaviour under faults", promises what they give.
const (
	// rateLimitTimeout bounds the limiter's Redis round trip; on failure
	// the request is let through.
	rateLimitTimeout = 100 * time.Millisecond
	// touchTimeout bounds the daily Touch after Kafka acknowledged an
	// event; on failure the reply says first_today false.
	touchTimeout = 100 * time.Millisecond
	// historyTimeout bounds every History route's store calls together
	// (Redis, and ClickHouse for deep pages and re-warms). With the rate
	// limiter's 100 ms before it, a 503 leaves well within 500 ms.
	historyTimeout = 250 * time.Millisecond
)

// faultLogs samples the log lines of failures that repeat with every
// request while a dependency is down; the metrics count every one.
type faultLogs struct {
	history     logsample.Sampler // history store failures
	unavailable logsample.Sampler // 503 request lines
	// anonymous: the request lines of refusals of callers without a
	// valid credential (401) and of unmatched routes, which anyone can
	// send as fast as they like (issue 26: each was a line at Info).
	anonymous logsample.Sampler
}

func newFaultLogs() *faultLogs {
	return &faultLogs{
		history:     logsample.Sampler{Every: logSample},
		unavailable: logsample.Sampler{Every: logSample},
		anonymous:   logsample.Sampler{Every: logSample},
	}
}

// historyDeadline is the middleware of the History routes: their store
// calls share one deadline.
func historyDeadline(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), historyTimeout)
	defer cancel()
	c.Request = c.Request.WithContext(ctx)
	c.Next()
}
