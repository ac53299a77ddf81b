package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/onair/onair/internal/refusal"
)

// The ops listener serves what only operators should see: /metrics
// (runtime, routes, Kafka lag), /readyz with each failure's message, and
// whatever cmd mounts on Ops() (pprof with --pprof). It listens on an
// address of its own, 127.0.0.1 by default, so none of it is on the
// public API port (issue 26).

// newOps builds the ops engine.
func (s *Server) newOps() *gin.Engine {
	o := gin.New()
	o.Use(s.recoverPanic)
	o.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{
		Registry:          s.cfg.Registry, // counts its own scrape errors
		EnableOpenMetrics: false,
	})))
	o.GET("/readyz", s.readyzDetail)
	o.GET("/healthz", healthz)
	o.NoRoute(func(c *gin.Context) {
		WriteError(c, refusal.New(refusal.NotFound, "", "no route for %s on the ops listener", c.Request.URL.Path))
	})
	return o
}

// Ops returns the ops listener's engine, for operator-only routes (pprof).
// Add routes before Start.
func (s *Server) Ops() *gin.Engine { return s.ops }

// OpsHandler returns the ops listener's handler (for httptest).
func (s *Server) OpsHandler() http.Handler { return s.ops }

// OpsAddr returns the ops listener's bound address once started, else
// Config.OpsAddr ("" when there is none).
func (s *Server) OpsAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opsLn != nil {
		return s.opsLn.Addr().String()
	}
	return s.cfg.OpsAddr
}

// startOps listens on Config.OpsAddr and serves the ops engine; s.mu is
// held. No listener when OpsAddr is "".
func (s *Server) startOps() error {
	if s.cfg.OpsAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.OpsAddr)
	if err != nil {
		return fmt.Errorf("api: listen on the ops address %s: %w", s.cfg.OpsAddr, err)
	}
	s.opsLn = ln
	s.opsHTTP = &http.Server{
		Handler:           s.ops,
		ReadHeaderTimeout: HeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.opsDone = make(chan struct{})
	go func() {
		defer close(s.opsDone)
		if err := s.opsHTTP.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("api: ops serve failed", "addr", ln.Addr().String(), "err", err)
		}
	}()
	s.log.Info("ops listening (metrics, readiness detail, pprof)", "addr", ln.Addr().String())
	return nil
}

// stopOps closes the ops listener: nothing on it is long-lived.
func (s *Server) stopOps() {
	if s.opsHTTP == nil {
		return
	}
	_ = s.opsHTTP.Close()
	<-s.opsDone
}
