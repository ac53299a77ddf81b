package loadtest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// Baseline attacks a gin hello-world JSON endpoint on 127.0.0.1, served
// by a process of its own when cfg.HelloCommand is set (the CLI's default:
// like the onair process it is compared with) or else in-process, with the same attacker, rate, duration and workers as cfg, so
// every onair figure can be quoted as a ratio to it measured on the same
// cores in the same run. cfg.Scenario, Target, Users, Items and TokenSecret
// are ignored; ReportDir, when set, receives the usual report files.
//
// It switches gin to release mode (a process-wide setting) to keep gin's
// debug route listing off the terminal.
func Baseline(ctx context.Context, cfg RunConfig) (Summary, error) {
	cfg.setDefaults()
	if err := cfg.validate(false); err != nil {
		return Summary{}, err
	}
	var addr string
	if len(cfg.HelloCommand) > 0 {
		a, stop, err := startHelloProcess(cfg.HelloCommand)
		if err != nil {
			return Summary{}, err
		}
		defer stop()
		addr = a
	} else {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return Summary{}, fmt.Errorf("cannot listen for the hello-world server: %w", err)
		}
		srv := &http.Server{Handler: helloHandler(), ReadHeaderTimeout: 5 * time.Second}
		serveErr := make(chan error, 1)
		go func() { serveErr <- srv.Serve(ln) }()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
			<-serveErr // http.ErrServerClosed once Shutdown returns
		}()
		addr = ln.Addr().String()
	}
	cfg.Target = "http://" + addr
	cfg.Scenario = "baseline"
	g := &generator{base: cfg.Target}
	g.initDrawers()
	tr := g.targeter([]weighted{{kindHello, 100}})
	return attack(ctx, cfg, "baseline", tr, newClient(cfg.Timeout, nil), nil)
}

// helloHandler is the smallest gin JSON endpoint: the ceiling any onair
// endpoint on the same cores can approach.
func helloHandler() http.Handler {
	if gin.Mode() == gin.DebugMode {
		gin.SetMode(gin.ReleaseMode)
	}
	r := gin.New()
	r.GET("/hello", func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"message": "hello"})
	})
	return r
}
