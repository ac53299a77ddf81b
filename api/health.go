package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/onair/onair/internal/jsonstr"
	"github.com/onair/onair/internal/refusal"
	"github.com/onair/onair/internal/version"
)

// ReadyCheck is one dependency /readyz checks (Kafka, Redis, ClickHouse).
type ReadyCheck struct {
	// Name labels the check in the /readyz reply.
	Name string
	// Check returns nil when the dependency is reachable. It must honour
	// ctx, which ends after readyTimeout.
	Check func(ctx context.Context) error
}

// readyTimeout bounds all of /readyz: a load balancer probing it must get
// an answer even when a dependency hangs.
const readyTimeout = time.Second

func (s *Server) mountHealth() {
	e := s.engine
	e.GET("/healthz", healthz)
	e.GET("/readyz", s.readyzPublic)
	e.GET("/openapi.yaml", serveOpenAPI)
}

// healthzBody is /healthz's answer: the process is up, and its release.
var healthzBody = append(jsonstr.Append([]byte(`{"status":"ok","version":`), version.Release()), "}\n"...)

func healthz(c *gin.Context) { writeJSON(c, http.StatusOK, healthzBody) }

// readyCacheFor is how long /readyz answers from its last probes: a load
// balancer (or anyone) calling it in a loop costs every dependency one
// round trip a second, not one per call.
const readyCacheFor = time.Second

// readyProbes runs the checks at most once per readyCacheFor; callers in
// between get the last results, and a caller arriving during a run waits
// for it.
type readyProbes struct {
	mu   sync.Mutex
	at   time.Time
	errs []error
}

// probe returns each check's last result, running them when the cached
// ones are older than readyCacheFor.
func (s *Server) probe(ctx context.Context) []error {
	p := &s.ready
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.errs != nil && time.Since(p.at) < readyCacheFor {
		return p.errs
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	checks := s.cfg.Ready
	errs := make([]error, len(checks))
	var wg sync.WaitGroup
	for i, rc := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = runCheck(ctx, rc.Check)
		}()
	}
	wg.Wait()
	p.errs, p.at = errs, time.Now()
	return errs
}

// readyzPublic is /readyz on the API port: anyone may call it, so it
// names the checks and their status ("ok" or "failed") and nothing of the
// failure itself (issue 26: raw dependency errors showed internal
// addresses). The ops listener's /readyz has the detail.
func (s *Server) readyzPublic(c *gin.Context) { s.readyz(c, false) }

// readyzDetail is /readyz on the ops listener: each failure's message.
func (s *Server) readyzDetail(c *gin.Context) { s.readyz(c, true) }

// readyz answers 200 {"status":"ready","checks":{"redis":"ok"}}, or 503
// with the standard error body naming the failed checks plus the same
// "checks" map, holding each failure's message when detail is set and
// "failed" otherwise.
func (s *Server) readyz(c *gin.Context, detail bool) {
	// The probes outlive a caller that hangs up: others share them.
	errs := s.probe(context.WithoutCancel(c.Request.Context()))
	checks := s.cfg.Ready
	var failed []string
	b := make([]byte, 0, 256)
	b = append(b, `"checks":{`...)
	for i, rc := range checks {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonstr.Append(b, rc.Name)
		b = append(b, ':')
		switch {
		case errs[i] == nil:
			b = jsonstr.Append(b, "ok")
		case detail:
			failed = append(failed, rc.Name)
			b = jsonstr.Append(b, errs[i].Error())
		default:
			failed = append(failed, rc.Name)
			b = jsonstr.Append(b, "failed")
		}
	}
	b = append(b, '}')
	if len(failed) == 0 {
		out := append([]byte(`{"status":"ready",`), b...)
		writeJSON(c, http.StatusOK, append(out, '}', '\n'))
		return
	}
	e := refusal.UnavailableFor("not_ready", "not ready: "+strings.Join(failed, ", "))
	c.Set(errKey, e)
	out := refusal.AppendJSON(nil, e)
	out = out[:len(out)-2] // reopen the body: `}` and newline
	out = append(out, `,"failed":[`...)
	for i, f := range failed {
		if i > 0 {
			out = append(out, ',')
		}
		out = jsonstr.Append(out, f)
	}
	out = append(out, "],"...)
	out = append(out, b...)
	c.Header("Retry-After", "1")
	writeJSON(c, http.StatusServiceUnavailable, append(out, '}', '\n'))
}

// runCheck runs check, turning a check that ignores ctx into a timeout
// error instead of a hung probe.
func runCheck(ctx context.Context, check func(context.Context) error) error {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- errPanicked
			}
		}()
		done <- check(ctx)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

var errPanicked = errors.New("check panicked")
