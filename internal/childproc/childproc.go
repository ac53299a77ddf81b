// Package childproc runs redis-server, clickhouse-server and postgres as
// supervised child processes with their data under one directory, for `make
// run` and for tests. Children die with the parent (Pdeathsig), so a crashed
// or killed onair never leaves servers holding ports and data directories.
package childproc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Server is a running child server process (redis-server, clickhouse-server
// or postgres).
// It keeps its directory and ports across Stop and Start, so tests can
// simulate an outage and a recovery with the same data.
type Server struct {
	name         string // "redis-server", "clickhouse-server" or "postgres", for messages
	bin          string
	args         []string
	dir          string
	logPath      string // the child's stdout and stderr
	serverLog    string // the server's own log file, if it keeps one besides stdout
	ports        []int  // every port the server listens on, checked before Start
	addr         string
	httpAddr     string
	ready        func(ctx context.Context) error
	readyTimeout time.Duration
	log          *slog.Logger
	// stopSignal asks the server to stop; 0 means SIGTERM (PostgreSQL's
	// SIGTERM waits for every client to leave: it takes SIGINT).
	stopSignal syscall.Signal
	// cred, when set, runs the server as another user (PostgreSQL refuses
	// to run as root).
	cred *syscall.Credential

	mu        sync.Mutex
	cmd       *exec.Cmd
	done      chan struct{} // closed once cmd has been waited for
	werr      error         // cmd.Wait's result, valid after done is closed
	startedAt time.Time     // when cmd started
	stopped   bool          // Stop ran: a supervisor must not restart it
	restarts  atomic.Int64  // restarts by the supervisor (supervise.go)
}

// Addr returns "127.0.0.1:port"; for ClickHouse the native (TCP) port,
// because that is the protocol clickhouse-go speaks with 18.16.
func (s *Server) Addr() string { return s.addr }

// HTTPAddr returns ClickHouse's HTTP address, or "" for Redis.
func (s *Server) HTTPAddr() string { return s.httpAddr }

// Dir returns the directory that holds the server's config, data and logs.
func (s *Server) Dir() string { return s.dir }

// Start starts the server (again, after Stop) on the same directory and
// ports and waits until it answers a real request. Starting a running server
// is a no-op.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = false
	return s.startLocked(ctx)
}

func (s *Server) startLocked(ctx context.Context) error {
	if s.cmd != nil {
		return nil
	}
	for _, p := range s.ports {
		if err := checkPortFree(p, s.name); err != nil {
			return err
		}
	}
	out, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("cannot open %s log: %w", s.name, err)
	}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = out, out
	// Setpgid keeps a terminal's Ctrl-C away from the children, so the parent
	// can stop them in order; Pdeathsig kills them if the parent dies first.
	// The kernel clears Pdeathsig when the user changes; Go sets it after
	// the credentials, so it holds for a server run as another user too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: s.cred}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("cannot start %s (%s): %w", s.name, s.bin, err)
	}
	done := make(chan struct{})
	go func() {
		s.werr = cmd.Wait() // read only after done is closed
		out.Close()
		close(done)
	}()
	s.cmd, s.done, s.startedAt = cmd, done, start

	if err := s.waitReady(ctx, done); err != nil {
		s.stopLocked(context.Background())
		return err
	}
	s.log.Info("child server ready", "server", s.name, "addr", s.addr, "pid", cmd.Process.Pid, "dir", s.dir, "took", time.Since(start))
	return nil
}

// waitReady polls the readiness check until it passes, the process exits or
// the deadline passes; failures carry the tail of the server's logs, which is
// where the reason (bad config, port taken, corrupt data) is written.
func (s *Server) waitReady(ctx context.Context, done <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, s.readyTimeout)
	defer cancel()
	var last error
	for {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		last = s.ready(pctx)
		pcancel()
		if last == nil {
			return nil
		}
		select {
		case <-done:
			tail := s.logTail()
			err := fmt.Errorf("%s exited before it was ready (%v); log tail:\n%s", s.name, s.werr, tail)
			if strings.Contains(tail, "Address already in use") {
				// taken between checkPortFree and the server's own bind
				return fmt.Errorf("%w: %v", &portInUseError{port: s.ports[0], name: s.name}, err)
			}
			return err
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s after %s: %v; log tail:\n%s", s.name, s.addr, s.readyTimeout, last, s.logTail())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop sends SIGTERM and waits for the server to exit, or sends SIGKILL when
// ctx ends first. Stopping a stopped server is a no-op.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	return s.stopLocked(ctx)
}

func (s *Server) stopLocked(ctx context.Context) error {
	if s.cmd == nil {
		return nil
	}
	cmd, done := s.cmd, s.done
	s.cmd, s.done = nil, nil
	start := time.Now()
	_ = cmd.Process.Signal(cmp.Or(s.stopSignal, syscall.SIGTERM))
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		err = fmt.Errorf("%s (pid %d) did not stop in time, killed: %w", s.name, cmd.Process.Pid, ctx.Err())
	}
	s.log.Info("child server stopped", "server", s.name, "addr", s.addr, "took", time.Since(start))
	return err
}

// logTail returns the last few KB of the child's output and its own log.
func (s *Server) logTail() string {
	t := Tail(s.logPath, 4096)
	if s.serverLog != "" {
		if st := Tail(s.serverLog, 4096); st != "" {
			t += "\n--- " + s.serverLog + " ---\n" + st
		}
	}
	return t
}

// Tail returns the last n bytes of the file at path ("" if unreadable):
// the part of a server log worth quoting in an error.
func Tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		_, _ = f.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// FreePort returns a TCP port on 127.0.0.1 that nobody listened on a moment
// ago. Another process may take it before the caller does; the server's
// port-in-use check then reports it clearly instead of failing obscurely.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// ErrPortInUse matches (errors.Is) the error Start returns when one of the
// server's ports is already taken, so callers can suggest stopping the other
// instance rather than retrying.
var ErrPortInUse = errors.New("port is already in use")

type portInUseError struct {
	port int
	name string
}

func (e *portInUseError) Error() string {
	return fmt.Sprintf("port %d is already in use (another %s or onair dev running?)", e.port, e.name)
}

func (e *portInUseError) Is(target error) bool { return target == ErrPortInUse }

// checkPortFree binds the port briefly: a failed bind on 127.0.0.1 catches
// listeners on 127.0.0.1 and on the wildcard address alike, where a dial
// could not tell a busy port from a slow server.
func checkPortFree(port int, name string) error {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return &portInUseError{port: port, name: name}
	}
	return ln.Close()
}

// pickedPortAttempts is how often a server whose ports were picked here
// (config port 0) is started again on new ones when one was taken meanwhile:
// between FreePort's close and the server's bind, any process (parallel test
// binaries, an outgoing connection's ephemeral port) may take it.
const pickedPortAttempts = 5

// retryPicked runs start again while it fails with ErrPortInUse, when picked
// is true (the ports are picked afresh by each call).
func retryPicked(picked bool, start func() (*Server, error)) (*Server, error) {
	for attempt := 1; ; attempt++ {
		s, err := start()
		if err == nil || !picked || attempt == pickedPortAttempts || !errors.Is(err, ErrPortInUse) {
			return s, err
		}
	}
}

// pickPort returns p, or a free port when p is 0.
func pickPort(p int) (int, error) {
	if p != 0 {
		return p, nil
	}
	return FreePort()
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return slog.New(slog.DiscardHandler)
}
