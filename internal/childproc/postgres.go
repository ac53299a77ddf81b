package childproc

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresUser is the role initdb creates and onair connects as (trust
// authentication: the server listens on 127.0.0.1 and its own socket
// directory only).
const PostgresUser = "onair"

// PostgresConfig configures StartPostgres.
type PostgresConfig struct {
	// Dir holds the cluster under data/, the socket and postgres.log.
	// Required; created when missing. Reusing a Dir keeps the data. When
	// onair runs as root the server runs as the system user "postgres",
	// which must be able to reach Dir: every parent directory must be
	// traversable by others (StartPostgres says which one is not).
	Dir string
	// Port to listen on, on 127.0.0.1. 0 picks a free port.
	Port int
	// NoSync turns fsync off: for tests, whose data need not survive a
	// power loss. A dev or production server keeps it on.
	NoSync bool
	// BinDir holds initdb and postgres. "" means the directory of
	// "postgres" on PATH, else the newest /usr/lib/postgresql/*/bin,
	// where Debian puts them.
	BinDir string
	// Log receives start and stop messages. nil discards them.
	Log *slog.Logger
}

// StartPostgres creates a cluster in cfg.Dir/data when there is none
// (initdb, ~1 s), starts postgres on it and returns once a query answers
// (30 s at most). It stops with SIGINT (PostgreSQL's fast shutdown:
// SIGTERM would wait for every pooled client to disconnect).
func StartPostgres(ctx context.Context, cfg PostgresConfig) (*Server, error) {
	return retryPicked(cfg.Port == 0, func() (*Server, error) { return startPostgres(ctx, cfg) })
}

func startPostgres(ctx context.Context, cfg PostgresConfig) (*Server, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("childproc: PostgresConfig.Dir is required")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	binDir, err := postgresBinDir(cfg.BinDir)
	if err != nil {
		return nil, err
	}
	cred, err := postgresCredential(dir)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		if err := initdb(ctx, binDir, dir, data, cred, cfg.NoSync); err != nil {
			return nil, err
		}
	}
	if err := clearStaleLock(ctx, data); err != nil {
		return nil, err
	}
	port, err := pickPort(cfg.Port)
	if err != nil {
		return nil, err
	}
	args := []string{"-D", data,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port=" + strconv.Itoa(port),
		"-c", "unix_socket_directories=" + dir,
		"-c", "max_connections=300",
		"-c", "shared_buffers=128MB",
		"-c", "log_min_messages=warning",
		"-c", "logging_collector=off",
	}
	if cfg.NoSync {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s := &Server{
		name:         "postgres",
		bin:          filepath.Join(binDir, "postgres"),
		args:         args,
		dir:          dir,
		logPath:      filepath.Join(dir, "postgres.log"),
		ports:        []int{port},
		addr:         addr,
		ready:        func(ctx context.Context) error { return postgresSelect1(ctx, PostgresDSN(addr, "postgres")) },
		readyTimeout: 30 * time.Second,
		log:          orDiscard(cfg.Log),
		stopSignal:   syscall.SIGINT,
		cred:         cred,
	}
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// clearStaleLock removes the postmaster.pid a killed server left behind,
// once its processes are gone. PostgreSQL removes a stale lock itself when
// its pid no longer exists, but a killed postmaster whose parent died too
// may stay a zombie (a container's pid 1 need not reap), and kill(pid, 0)
// succeeds on a zombie: "lock file already exists". Its backends notice
// the postmaster's death and exit within moments; waiting for them (every
// process whose working directory is the cluster) also avoids "shared
// memory block is still in use".
func clearStaleLock(ctx context.Context, data string) error {
	lock := filepath.Join(data, "postmaster.pid")
	b, err := os.ReadFile(lock)
	if err != nil {
		return nil // no lock: a clean stop or a new cluster
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return nil // let postgres judge a lock it cannot parse
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		running := running(pid)
		for _, p := range processesIn(data) {
			running = running || p != pid
		}
		if !running {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil // a live server: postgres refuses to start and says why
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := os.Remove(lock); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("cannot remove the stale %s: %w", lock, err)
	}
	return nil
}

// running reports whether pid exists and is not a zombie.
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b) // the state follows the command, which is in parentheses
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// processesIn lists the running processes whose working directory is dir.
func processesIn(dir string) []int {
	var out []int
	cwds, _ := filepath.Glob("/proc/[0-9]*/cwd")
	for _, c := range cwds {
		if target, err := os.Readlink(c); err == nil && target == dir {
			if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(c))); err == nil && running(pid) {
				out = append(out, pid)
			}
		}
	}
	return out
}

// PostgresDSN is the connection string of database db on a server
// StartPostgres started at addr.
func PostgresDSN(addr, db string) string {
	u := url.URL{Scheme: "postgres", User: url.User(PostgresUser), Host: addr, Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

func initdb(ctx context.Context, binDir, dir, data string, cred *syscall.Credential, noSync bool) error {
	args := []string{"-D", data, "-U", PostgresUser, "--auth=trust", "-E", "UTF8", "--no-locale", "--no-instructions"}
	if noSync {
		args = append(args, "--no-sync")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "initdb"), args...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb of %s failed: %w\n%s", data, err, out)
	}
	return nil
}

// postgresCredential creates dir and, when onair runs as root (which
// PostgreSQL refuses), hands it to the system user "postgres" and returns
// that user's credential; otherwise nil (the current user runs it).
func postgresCredential(dir string) (*syscall.Credential, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create postgres dir: %w", err)
	}
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("postgres refuses to run as root and there is no system user \"postgres\" to run it as "+
			"(Debian's postgresql package creates it: run scripts/setup.sh): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := PostgresCanReach(dir); err != nil {
		return nil, err
	}
	err = filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
	if err != nil {
		return nil, fmt.Errorf("cannot hand %s to the user postgres: %w", dir, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// PostgresCanReach returns an error naming the first parent of dir that the
// system user "postgres" cannot traverse, when onair runs as root (and
// PostgreSQL must run as that user); nil otherwise.
func PostgresCanReach(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err == nil && fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("postgres runs as the user \"postgres\", which cannot reach %s: %s is mode %v", dir, p, fi.Mode().Perm())
		}
		if p == "/" {
			return nil
		}
	}
}

func postgresBinDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(r), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return versionOf(a) - versionOf(b) })
	if len(dirs) == 0 {
		return "", fmt.Errorf("no PostgreSQL server found (postgres on PATH or /usr/lib/postgresql/*/bin): run scripts/setup.sh")
	}
	return dirs[len(dirs)-1], nil
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func postgresSelect1(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return err
	}
	if one != 1 {
		return fmt.Errorf("SELECT 1 returned %d", one)
	}
	return nil
}
