package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/onair/onair/internal/authtoken"
	"github.com/onair/onair/internal/childproc"
	"github.com/onair/onair/internal/openapi"
)

// Onair is a running `onair dev` child process with its own data directory
// and free ports: embedded Kafka, child redis-server and clickhouse-server,
// every role. Tests talk to it over HTTP and read its Kafka, Redis and
// ClickHouse directly.
type Onair struct {
	// URL is the HTTP API, e.g. "http://127.0.0.1:41234".
	URL string
	// OpsURL is the private ops listener: /metrics, /readyz with detail,
	// /debug/pprof/ with --pprof.
	OpsURL string
	// KafkaAddr is the embedded broker, for kgo.SeedBrokers.
	KafkaAddr string
	// RedisAddr is the child redis-server.
	RedisAddr string
	// ClickHouseAddr is the child clickhouse-server's native port (chdb.Open).
	ClickHouseAddr string
	// ClickHouseHTTPAddr is its HTTP port.
	ClickHouseHTTPAddr string
	// PostgresAddr is the child postgres; PostgresDSN its database
	// "onair" (pgdb.Open).
	PostgresAddr, PostgresDSN string
	// DataDir is the absolute data directory (Kafka, Redis and ClickHouse
	// data, auth.secret, and onair.stderr.log: the child's stderr).
	DataDir string
	// Secret is the HS256 secret of the process: --auth-secret when given
	// in args, else the contents of <DataDir>/auth.secret.
	Secret []byte
	// Database is the ClickHouse database the process uses ("onair").
	Database string

	cmd     *exec.Cmd
	stderr  string        // path of the child's stderr file
	done    chan struct{} // closed once cmd has been waited for
	waitErr error         // cmd.Wait's result, valid after done is closed
	stopped bool          // Stop or Kill ran: cleanup has nothing to do
	mu      sync.Mutex
}

// Timeouts of the harness. A cold clickhouse-server on a busy two-core
// machine is the slow part of a start.
const (
	onairStartTimeout = 120 * time.Second
	onairStopTimeout  = 30 * time.Second
)

// onairBin builds cmd/onair once per test binary, into its temporary
// directory. `go test` puts its own toolchain first in PATH, so this builds
// with the same Go as the test binary; the package path works from any
// directory inside the module.
var onairBin = sync.OnceValues(func() (string, error) {
	root, err := sharedRoot()
	if err != nil {
		return "", err
	}
	path := filepath.Join(root, "onair")
	if out, err := exec.Command("go", "build", "-o", path, "github.com/onair/onair/cmd/onair").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/onair: %v\n%s", err, out)
	}
	return path, nil
})

// OnairBinary returns the path of the onair executable built for this test
// binary, for tests that run other commands than `onair dev` (serve, token,
// a second dev).
func OnairBinary(t testing.TB) string {
	t.Helper()
	path, err := onairBin()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return path
}

// StartOnair starts `onair dev` on dataDir ("" = a fresh t.TempDir()) with
// every port chosen by the kernel (port 0), event budgets out of the way and
// --log-level warn; args are
// appended, so they can override any of those. It returns once the "onair
// dev is up" banner is printed, with the addresses the banner reports. The
// child gets the test's environment minus every ONAIR_* variable, so a
// developer's shell settings cannot leak into it; pass flags instead. It
// dies with the test binary (Pdeathsig) and is stopped at cleanup, which
// fails the test when it does not exit with status 0 within 30 s.
func StartOnair(t testing.TB, dataDir string, args ...string) *Onair {
	t.Helper()
	bin := OnairBinary(t)
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := postgresCanEnter(dataDir); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	stderrPath := filepath.Join(dataDir, "onair.stderr.log")
	errFile, err := os.OpenFile(stderrPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	fmt.Fprintf(errFile, "--- testenv: onair dev started at %s ---\n", time.Now().Format(time.RFC3339Nano))
	full := append([]string{"dev", "--data-dir", dataDir,
		"--http-addr", "127.0.0.1:0", "--ops-addr", "127.0.0.1:0",
		"--dev-kafka-port", "0", "--dev-redis-port", "0",
		"--dev-clickhouse-port", "0", "--dev-clickhouse-http-port", "0", "--dev-postgres-port", "0",
		// Tests post as few users, faster than an app does; a test of the
		// event budget passes its own --event-rate.
		"--event-rate", "1000000", "--service-event-rate", "1000000",
		"--log-level", "warn"}, args...)
	cmd := exec.Command(bin, full...)
	cmd.Env = ChildEnv()
	cmd.Stderr = errFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		errFile.Close()
		t.Fatalf("testenv: %v", err)
	}
	// The children of onair (redis-server, clickhouse-server) have their
	// own Pdeathsig, so killing onair takes them along.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		errFile.Close()
		t.Fatalf("testenv: cannot start %s: %v", bin, err)
	}
	o := &Onair{cmd: cmd, stderr: stderrPath, done: make(chan struct{})}

	banner := make(chan map[string]string, 1)
	go readBanner(stdout, banner)
	go func() {
		// Wait closes the stdout pipe; the reader above has seen EOF by then
		// or gets an error, either way it ends.
		o.waitErr = cmd.Wait()
		errFile.Close()
		close(o.done)
	}()
	t.Cleanup(func() {
		o.mu.Lock()
		stopped := o.stopped
		o.mu.Unlock()
		if !stopped {
			if err := o.stop(); err != nil {
				t.Errorf("testenv: at cleanup: %v", err)
			}
		}
	})

	var fields map[string]string
	select {
	case fields = <-banner:
	case <-o.done:
		t.Fatalf("testenv: onair dev exited before it was up (%v); stderr tail:\n%s", o.waitErr, o.StderrTail())
	case <-time.After(onairStartTimeout):
		t.Fatalf("testenv: onair dev not up after %s; stderr tail:\n%s", onairStartTimeout, o.StderrTail())
	}
	if err := o.parseBanner(fields); err != nil {
		t.Fatalf("testenv: %v; stderr tail:\n%s", err, o.StderrTail())
	}
	secret := flagValue(args, "auth-secret")
	if secret == "" {
		b, err := os.ReadFile(filepath.Join(o.DataDir, "auth.secret"))
		if err != nil {
			t.Fatalf("testenv: onair dev's secret: %v", err)
		}
		secret = strings.TrimSpace(string(b))
	}
	o.Secret = []byte(secret)
	o.checkRoutesDocumented(t)
	return o
}

// readBanner sends the fields of onair dev's "is up" banner on banner.
// It reads until EOF, also after the banner, so the child never blocks
// writing to a full pipe.
func readBanner(stdout io.Reader, banner chan<- map[string]string) {
	sc := bufio.NewScanner(stdout)
	fields := map[string]string{}
	up, sent := false, false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "onair dev is up"):
			up = true
		case up && !sent:
			for _, k := range []string{"HTTP API", "Ops", "Kafka", "Redis", "ClickHouse", "PostgreSQL", "Data"} {
				if v, ok := strings.CutPrefix(line, k+" "); ok {
					fields[k] = strings.TrimSpace(v)
				}
			}
			if strings.HasPrefix(line, "Ctrl-C stops everything") {
				banner <- fields
				sent = true
			}
		}
	}
	_, _ = io.Copy(io.Discard, stdout)
}

// checkRoutesDocumented fails the test when onair dev (every role, every
// route mounted) warned at start-up that a route is missing from the
// OpenAPI document: a new route joins internal/openapi/openapi.yaml in the
// change that mounts it.
func (o *Onair) checkRoutesDocumented(t testing.TB) {
	t.Helper()
	b, err := os.ReadFile(o.stderr)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	var missing []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.Contains(line, openapi.UndocumentedMsg) {
			missing = append(missing, line)
		}
	}
	if len(missing) > 0 {
		t.Errorf("testenv: onair dev mounts routes that internal/openapi/openapi.yaml lacks; document them:\n%s", strings.Join(missing, "\n"))
	}
}

// parseBanner fills the addresses from the banner's lines, e.g.
//
//	HTTP API     http://127.0.0.1:8080   (health: ...)
//	ClickHouse   127.0.0.1:19000 (native), 127.0.0.1:18123 (HTTP), database onair
func (o *Onair) parseBanner(f map[string]string) error {
	first := func(k string) string {
		w := strings.Fields(f[k])
		if len(w) == 0 {
			return ""
		}
		return strings.TrimSuffix(w[0], ",")
	}
	o.URL = first("HTTP API")
	o.OpsURL = first("Ops")
	o.KafkaAddr = first("Kafka")
	o.RedisAddr = first("Redis")
	o.ClickHouseAddr = first("ClickHouse")
	o.DataDir = f["Data"]
	if o.PostgresAddr = first("PostgreSQL"); o.PostgresAddr != "" {
		o.PostgresDSN = childproc.PostgresDSN(o.PostgresAddr, "onair")
	}
	ch := strings.Fields(f["ClickHouse"]) // addr (native), addr (HTTP), database db
	if len(ch) >= 6 {
		o.ClickHouseHTTPAddr = strings.TrimSuffix(ch[2], ",")
		o.Database = ch[len(ch)-1]
	}
	if !strings.HasPrefix(o.URL, "http://") || !strings.HasPrefix(o.OpsURL, "http://") || o.KafkaAddr == "" || o.RedisAddr == "" ||
		o.ClickHouseAddr == "" || o.ClickHouseHTTPAddr == "" || o.Database == "" || o.DataDir == "" || o.PostgresDSN == "" {
		return fmt.Errorf("cannot parse the onair dev banner: %q", f)
	}
	for _, a := range []string{strings.TrimPrefix(o.URL, "http://"), strings.TrimPrefix(o.OpsURL, "http://"), o.KafkaAddr, o.RedisAddr, o.ClickHouseAddr, o.ClickHouseHTTPAddr, o.PostgresAddr} {
		if _, p, ok := strings.Cut(a, ":"); !ok || p == "0" {
			return fmt.Errorf("onair dev's banner reports address %q, want a bound host:port", a)
		}
	}
	return nil
}

// Stop sends SIGTERM and waits for the process to exit. It fails the test
// when the exit status is not 0 or the exit takes more than 30 s (the
// process is then killed).
func (o *Onair) Stop(t testing.TB) {
	t.Helper()
	if err := o.stop(); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

func (o *Onair) stop() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.stopped {
		return nil
	}
	o.stopped = true
	start := time.Now()
	_ = o.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-o.done:
	case <-time.After(onairStopTimeout):
		_ = o.cmd.Process.Kill()
		<-o.done
		return fmt.Errorf("onair dev (pid %d) did not exit within %s of SIGTERM, killed; stderr tail:\n%s",
			o.cmd.Process.Pid, onairStopTimeout, o.StderrTail())
	}
	if o.waitErr != nil {
		return fmt.Errorf("onair dev (pid %d) exited with %v %s after SIGTERM; stderr tail:\n%s",
			o.cmd.Process.Pid, o.waitErr, time.Since(start).Round(time.Millisecond), o.StderrTail())
	}
	return nil
}

// Kill sends SIGKILL, a crash, and waits until onair and its child servers
// are gone, so that a restart on the same DataDir does not meet a dying
// clickhouse-server holding the data.
func (o *Onair) Kill(t testing.TB) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.stopped {
		return
	}
	o.stopped = true
	kids := childproc.Descendants(o.cmd.Process.Pid)
	_ = o.cmd.Process.Kill()
	<-o.done
	Wait(t, onairStopTimeout, func() bool {
		for _, pid := range kids {
			if alive(pid) {
				return false
			}
		}
		return true
	}, "children %v of killed onair dev still running", kids)
}

// Done is closed when the process has exited, whoever stopped it.
func (o *Onair) Done() <-chan struct{} { return o.done }

// StderrTail returns the last 8 KB of the process's stderr (its log).
func (o *Onair) StderrTail() string { return childproc.Tail(o.stderr, 8<<10) }

// Token returns a bearer token for user signed with o.Secret, valid for an
// hour; role is "", "admin" or "service".
func (o *Onair) Token(t testing.TB, user uint64, role string) string {
	t.Helper()
	return SignToken(t, o.Secret, user, role)
}

// SignToken returns a bearer token (internal/authtoken's, as api.SignToken
// makes) for user (sub), valid for an hour, with the optional role.
func SignToken(t testing.TB, secret []byte, user uint64, role string) string {
	t.Helper()
	tok, err := authtoken.Sign(secret, user, role, time.Hour)
	if err != nil {
		t.Fatalf("testenv: cannot sign token: %v", err)
	}
	return tok
}

// flagValue returns the last value of --name (or -name, =value forms) in args.
func flagValue(args []string, name string) string {
	v := ""
	for i, a := range args {
		a = strings.TrimLeft(a, "-")
		if a == name && i+1 < len(args) {
			v = args[i+1]
		} else if s, ok := strings.CutPrefix(a, name+"="); ok {
			v = s
		}
	}
	return v
}

// alive reports whether pid runs and is not a zombie waiting to be reaped.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	// The state follows the command, which is in parentheses.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// DataDir is a t.TempDir() that onair dev can keep its PostgreSQL in
// (see postgresCanEnter), for tests that start onair dev themselves.
func DataDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := postgresCanEnter(dir); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return dir
}

// postgresCanEnter lets the user postgres (which runs onair dev's child
// PostgreSQL when tests run as root) traverse the temporary directories
// above dir that the test created mode 0700 (t.TempDir's), so the cluster
// stays inside the test's data directory and goes with it.
func postgresCanEnter(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	tmp := filepath.Clean(os.TempDir())
	for p := filepath.Clean(dir); strings.HasPrefix(p, tmp+"/"); p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if err := os.Chmod(p, fi.Mode().Perm()|0o011); err != nil {
			return err
		}
	}
	return nil
}
