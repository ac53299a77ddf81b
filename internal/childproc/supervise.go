package childproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// SuperviseConfig configures Supervise. Every zero value means the
// documented default.
type SuperviseConfig struct {
	// MinBackoff is the wait before the first restart after a crash;
	// 0 means 100 ms. Each fast crash in a row doubles it.
	MinBackoff time.Duration
	// MaxBackoff caps the wait; 0 means 5 s.
	MaxBackoff time.Duration
	// StableAfter is how long a run must last for its crash not to count
	// as fast: it then restarts after MinBackoff again. 0 means 30 s.
	StableAfter time.Duration
	// MaxFastCrashes is how many fast crashes in a row (a failed restart
	// counts as one) make the supervisor give up; 0 means 5.
	MaxFastCrashes int
	// OnRestart, when set, is called after each successful restart.
	OnRestart func()
	// OnGiveUp, when set, is called once, with an error saying why, when
	// the supervisor gives up; the server then stays down.
	OnGiveUp func(error)
}

// ErrGaveUp matches (errors.Is) the error OnGiveUp receives.
var ErrGaveUp = errors.New("gave up restarting")

// errStopped: Stop came while a restart was waiting.
var errStopped = errors.New("stopped")

// Supervise watches the running server in the background and starts it
// again, on the same directory and ports (so with its data), whenever it
// exits without Stop: killed, crashed, out of memory. Restarts back off;
// after MaxFastCrashes fast crashes in a row it gives up, logs why with
// the tail of the server's log, and calls OnGiveUp. Supervision ends with
// Stop or when ctx ends. A stopped (SIGSTOP) server is not an exit: a
// frozen dependency is the clients' to survive.
func (s *Server) Supervise(ctx context.Context, cfg SuperviseConfig) {
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	if cfg.StableAfter <= 0 {
		cfg.StableAfter = 30 * time.Second
	}
	if cfg.MaxFastCrashes <= 0 {
		cfg.MaxFastCrashes = 5
	}
	s.mu.Lock()
	s.stopped = false
	s.mu.Unlock()
	go s.supervise(ctx, cfg)
}

// Restarts returns how many times the supervisor restarted the server.
func (s *Server) Restarts() int64 { return s.restarts.Load() }

func (s *Server) supervise(ctx context.Context, cfg SuperviseConfig) {
	fast := 0
	for {
		s.mu.Lock()
		cmd, done, started := s.cmd, s.done, s.startedAt
		s.mu.Unlock()
		if cmd == nil {
			return // stopped on purpose
		}
		select {
		case <-done:
		case <-ctx.Done():
			return
		}
		s.mu.Lock()
		if s.cmd != cmd {
			s.mu.Unlock()
			continue // Stop took it down
		}
		s.cmd, s.done = nil, nil
		exit := s.werr
		s.mu.Unlock()

		ran := time.Since(started)
		if ran >= cfg.StableAfter {
			fast = 0
		}
		s.log.Error("child server exited unexpectedly; restarting it", "server", s.name, "addr", s.addr,
			"pid", cmd.Process.Pid, "ran", ran.Round(time.Millisecond), "exit", exit, "log_tail", lastLines(s.logTail(), 5))
		for {
			fast++
			if fast > cfg.MaxFastCrashes {
				s.giveUp(cfg, fast-1)
				return
			}
			backoff := min(cfg.MinBackoff<<(fast-1), cfg.MaxBackoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			err := s.restart(ctx)
			if errors.Is(err, errStopped) || ctx.Err() != nil {
				return
			}
			if err == nil {
				s.restarts.Add(1)
				s.log.Warn("child server restarted", "server", s.name, "addr", s.addr, "restarts", s.restarts.Load(), "after", backoff)
				if cfg.OnRestart != nil {
					cfg.OnRestart()
				}
				break
			}
			s.log.Error("child server restart failed", "server", s.name, "attempt", fast, "err", err)
		}
	}
}

// restart starts the server again unless Stop ran meanwhile.
func (s *Server) restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errStopped
	}
	return s.startLocked(ctx)
}

func (s *Server) giveUp(cfg SuperviseConfig, crashes int) {
	err := fmt.Errorf("%w: %s at %s crashed %d times in a row, each within %s of starting; it stays down. "+
		"Its log (%s) ends with:\n%s", ErrGaveUp, s.name, s.addr, crashes, cfg.StableAfter, s.logPath, s.logTail())
	s.log.Error("child server keeps crashing; not restarting it again", "server", s.name, "addr", s.addr,
		"crashes", crashes, "log", s.logPath)
	if cfg.OnGiveUp != nil {
		cfg.OnGiveUp(err)
	}
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	end := len(s)
	for end > 0 && s[end-1] == '\n' {
		end--
	}
	i := end
	for ; i > 0 && n > 0; i-- {
		if s[i-1] == '\n' {
			n--
			if n == 0 {
				break
			}
		}
	}
	return s[i:end]
}

// PID returns the server's process id, 0 while it is not running.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// FindChild returns the pid of the process named name (the base name of
// its argv[0], e.g. "redis-server") among the descendants of parent, as
// read from /proc (Linux): how a fault test or `onair loadtest faults`
// finds the servers of an `onair dev` to stop or kill.
func FindChild(parent int, name string) (int, error) {
	for _, pid := range Descendants(parent) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		// redis-server rewrites its title to "redis-server 127.0.0.1:port"
		argv0, _, _ := strings.Cut(string(b), "\x00")
		argv0, _, _ = strings.Cut(argv0, " ")
		if filepath.Base(argv0) == name {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no process %s below pid %d", name, parent)
}

// Descendants lists the process tree below pid, from /proc (Linux).
func Descendants(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, s := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(s); err == nil {
				out = append(out, c)
				out = append(out, Descendants(c)...)
			}
		}
	}
	return out
}
