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
	addr, stop, err := startHello(cfg)
	if err != nil {
		return Summary{}, err
	}
	defer stop()
	cfg.Target = "http://" + addr
	cfg.Scenario = "baseline"
	g := &generator{base: cfg.Target}
	g.initDrawers()
	tr := g.targeter([]weighted{{kindHello, 100}})
	return attack(ctx, cfg, "baseline", tr, newClient(cfg.Timeout, nil), nil)
}

// ceiling sends g's requests for cfg.Scenario to a hello-world server of
// its own (see RunConfig.Ceiling), with the same attacker settings as the
// scenario's attack.
func ceiling(ctx context.Context, cfg RunConfig, g *generator) (Summary, error) {
	addr, stop, err := startHello(cfg)
	if err != nil {
		return Summary{}, err
	}
	defer stop()
	tr := g.targeterAt("http://"+addr, scenarioMixes[cfg.Scenario])
	return attack(ctx, cfg, "ceiling", tr, newClient(cfg.Timeout, nil), nil)
}

// startHello serves the hello-world endpoint on a free loopback port: in a
// process of its own when cfg.HelloCommand is set, else in this one.
func startHello(cfg RunConfig) (addr string, stop func(), err error) {
	if len(cfg.HelloCommand) > 0 {
		return startHelloProcess(cfg.HelloCommand)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("cannot listen for the hello-world server: %w", err)
	}
	srv := &http.Server{Handler: helloHandler(), ReadHeaderTimeout: 5 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	stop = func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-serveErr // http.ErrServerClosed once Shutdown returns
	}
	return ln.Addr().String(), stop, nil
}

// helloHandler is the smallest gin JSON endpoint: the ceiling any onair
// endpoint on the same cores can approach.
func helloHandler() http.Handler {
	if gin.Mode() == gin.DebugMode {
		gin.SetMode(gin.ReleaseMode)
	}
	r := gin.New()
	hello := func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"message": "hello"}) }
	r.GET("/hello", hello)
	// Every other route gets the same reply, so onair's requests can be
	// sent here as they are (RunConfig.Ceiling); a body is not read.
	r.NoRoute(hello)
	return r
}
