package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"

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
	healthz := jsonstr.Append([]byte(`{"status":"ok","version":`), version.Release())
	healthz = append(healthz, "}\n"...)
	e.GET("/healthz", func(c *gin.Context) { writeJSON(c, http.StatusOK, healthz) })
	e.GET("/readyz", s.readyz)
	e.GET("/openapi.yaml", serveOpenAPI)
	e.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{
		Registry:          s.cfg.Registry, // counts its own scrape errors
		EnableOpenMetrics: false,
	})))
}

// readyz runs every check concurrently and answers 200
// {"status":"ready","checks":{"redis":"ok"}}, or 503 with the standard
// error body naming the failed checks plus the same "checks" map holding
// each failure's message.
func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), readyTimeout)
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

	var failed []string
	b := make([]byte, 0, 256)
	b = append(b, `"checks":{`...)
	for i, rc := range checks {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonstr.Append(b, rc.Name)
		b = append(b, ':')
		if errs[i] != nil {
			failed = append(failed, rc.Name)
			b = jsonstr.Append(b, errs[i].Error())
		} else {
			b = jsonstr.Append(b, "ok")
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
