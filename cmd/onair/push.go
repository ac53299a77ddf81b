package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/onair/onair/api"
	"github.com/onair/onair/internal/kafka"
	"github.com/onair/onair/push"
	"github.com/onair/onair/push/web"
)

// pushConfig is the settings of the push role and the dev sign-in.
type pushConfig struct {
	DevLogin       bool
	Origins        []string
	BatchInterval  time.Duration
	OnlineInterval time.Duration
	ShutdownWindow time.Duration
	QueueSize      int
	// Per-user limits (push.Config's MaxConnsPerUser, MaxConnsPerUserCluster,
	// FrameRate, FrameBurst).
	UserConns        int
	UserConnsCluster int
	FrameRate        int
	FrameBurst       int
}

func (p *pushConfig) flags(fs *flag.FlagSet, dev bool, c *config) {
	if !dev { // onair dev always answers the code (it has no SMS gateway)
		fs.BoolVar(&p.DevLogin, "dev-login", c.envBool("dev-login", false), "dev sign-in: POST /v1/auth/sms-code answers the code in its reply (dev_code) and logs it: anyone can sign in as anyone, never on a public deployment")
	} else {
		p.DevLogin = true
	}
	p.Origins = split(env("push-origins", ""))
	fs.Func("push-origins", "browser origins allowed to open /v1/ws besides the page's own, e.g. https://app.example.com, or * (comma-separated)",
		func(s string) error { p.Origins = split(s); return nil })
	fs.DurationVar(&p.BatchInterval, "push-batch-interval", c.envDur("push-batch-interval", push.DefaultBatchInterval), "push: a room's frames are merged into one batch this often")
	fs.DurationVar(&p.OnlineInterval, "push-online-interval", c.envDur("push-online-interval", push.DefaultOnlineInterval), "push: head-counts are merged in Redis and pushed this often")
	fs.DurationVar(&p.ShutdownWindow, "push-shutdown-window", c.envDur("push-shutdown-window", push.DefaultShutdownWindow), "push: connections are closed spread over this window at shutdown")
	fs.IntVar(&p.QueueSize, "push-queue", c.envInt("push-queue", push.DefaultQueueSize), "push: frames a connection may have queued before it steps down (half: no danmaku, 3/4: state only, full: closed)")
	fs.IntVar(&p.UserConns, "push-user-conns", c.envInt("push-user-conns", push.DefaultMaxConnsPerUser), "push: WebSocket connections one user may hold on this node (beyond: 429 naming user); -1 = no limit")
	fs.IntVar(&p.UserConnsCluster, "push-user-conns-cluster", c.envInt("push-user-conns-cluster", push.DefaultMaxConnsPerUserCluster), "push: WebSocket connections one user may hold across push nodes, counted in Redis {u<id>}:ws (fails open when Redis is down: the per-node limit holds); -1 = no limit")
	fs.IntVar(&p.FrameRate, "push-frame-rate", c.envInt("push-frame-rate", push.DefaultFrameRate), "push: frames per second a client may send on one connection (pings, acks); beyond the burst it is closed with 3508")
	fs.IntVar(&p.FrameBurst, "push-frame-burst", c.envInt("push-frame-burst", push.DefaultFrameBurst), "push: burst of --push-frame-rate")
}

// startPush mounts GET /v1/ws on srv and starts the gateway. The stack
// stops the HTTP server first (no new upgrades), then the gateway, which
// closes the hijacked connections with a close frame.
func startPush(ctx context.Context, d *deps, srv *api.Server) error {
	t0 := time.Now()
	cfg := d.cfg
	files := raiseFileLimit(d.log)
	gw, err := push.New(push.Config{
		MaxConns: max(100, files-reservedFiles),
		Brokers:  cfg.KafkaBrokers, Topic: kafka.TopicPushes, Redis: d.rdb, Prefix: cfg.RedisPrefix,
		AllowedOrigins: cfg.Push.Origins, BatchInterval: cfg.Push.BatchInterval, OnlineInterval: cfg.Push.OnlineInterval,
		ShutdownWindow: cfg.Push.ShutdownWindow, QueueSize: cfg.Push.QueueSize,
		MaxConnsPerUser: cfg.Push.UserConns, MaxConnsPerUserCluster: cfg.Push.UserConnsCluster,
		FrameRate: float64(cfg.Push.FrameRate), FrameBurst: cfg.Push.FrameBurst,
		Registerer: d.reg, Log: d.log.With("component", "push"),
	})
	if err != nil {
		return err
	}
	if err := gw.Start(ctx); err != nil {
		return err
	}
	api.MountPush(srv, gw)
	d.st.started("push gateway", t0, gw.Shutdown)
	return nil
}

// mountPages serves the browser pages (the live room at /live/).
func mountPages(srv *api.Server) {
	h := gin.WrapH(web.Handler("/live/"))
	srv.Router().GET("/live/*path", api.PageHeaders, h)
}

// raiseFileLimit lifts the limit of open files, each viewer being a
// socket, and returns it. The soft limit goes to the hard one, or to
// wantFiles when the process may raise the hard limit too (root).
func raiseFileLimit(log *slog.Logger) int {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		log.Warn("cannot read the open-files limit", "err", err)
		return 1024
	}
	old := l.Cur
	if l.Max < wantFiles {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: wantFiles, Max: wantFiles}); err == nil {
			log.Info("open-files limit raised", "from", old, "to", fmt.Sprint(wantFiles))
			return wantFiles
		}
	}
	if l.Cur >= l.Max {
		return int(l.Cur)
	}
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		log.Warn("cannot raise the open-files limit", "from", old, "to", l.Max, "err", err)
		return int(old)
	}
	log.Info("open-files limit raised", "from", old, "to", fmt.Sprint(l.Max))
	return int(l.Cur)
}

const (
	// wantFiles is the open-files limit a push node asks for: 100 000 viewers.
	wantFiles = 100_000
	// reservedFiles are kept from viewers for the process's own clients
	// (Kafka, Redis, ClickHouse, the embedded broker and servers of
	// onair dev, HTTP requests): at the limit the gateway answers 503.
	reservedFiles = 1000
)
