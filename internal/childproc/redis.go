package childproc

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// RedisConfig configures StartRedis.
type RedisConfig struct {
	// Dir holds redis.conf, the append-only file and redis.log. Required;
	// created when missing. Reusing a Dir keeps the data of earlier runs.
	Dir string
	// Port to listen on, on 127.0.0.1. 0 picks a free port.
	Port int
	// Bin is the redis-server binary. "" means "redis-server" from PATH.
	Bin string
	// Log receives start and stop messages. nil discards them.
	Log *slog.Logger
}

// StartRedis writes a redis.conf into cfg.Dir and starts redis-server with
// it, returning once the server answers PING (10 s at most).
//
// Persistence is AOF with fsync every second: a dev restart or a test's
// Stop/Start keeps the data (SIGTERM makes Redis flush the AOF), and RDB
// snapshots are off because they would only duplicate it.
func StartRedis(ctx context.Context, cfg RedisConfig) (*Server, error) {
	return retryPicked(cfg.Port == 0, func() (*Server, error) { return startRedis(ctx, cfg) })
}

func startRedis(ctx context.Context, cfg RedisConfig) (*Server, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("childproc: RedisConfig.Dir is required")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create redis dir: %w", err)
	}
	bin := cfg.Bin
	if bin == "" {
		bin = "redis-server"
	}
	port, err := pickPort(cfg.Port)
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`# Written by onair (internal/childproc); rewritten on every start.
port %d
bind 127.0.0.1
protected-mode no
daemonize no
dir %q
appendonly yes
appendfsync everysec
save ""
logfile ""
loglevel warning
`, port, dir)
	confPath := filepath.Join(dir, "redis.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, fmt.Errorf("cannot write redis.conf: %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s := &Server{
		name:         "redis-server",
		bin:          bin,
		args:         []string{confPath},
		dir:          dir,
		logPath:      filepath.Join(dir, "redis.log"),
		ports:        []int{port},
		addr:         addr,
		ready:        func(ctx context.Context) error { return redisPing(ctx, addr) },
		readyTimeout: 10 * time.Second,
		log:          orDiscard(cfg.Log),
	}
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// redisPing speaks RESP directly rather than through go-redis so the check
// sees the exact reply: "-LOADING" while the AOF is replayed is not ready.
func redisPing(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line = strings.TrimSpace(line); line != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}
