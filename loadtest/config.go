package loadtest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// Defaults used when a RunConfig field is zero.
const (
	DefaultTarget = "http://127.0.0.1:8080"
	// DefaultOps is onair's private ops listener (--ops-addr): /metrics
	// and pprof are not on the API port.
	DefaultOps         = "http://127.0.0.1:8081"
	DefaultUsers       = 10_000
	DefaultItems       = 100_000
	DefaultBatch       = 100
	DefaultTimeout     = 5 * time.Second
	DefaultMaxWorkers  = 64   // concurrency of a --rate 0 (max rate) run
	DefaultPacedMaxCap = 1024 // upper bound on workers of a paced run
	// MaxRounds bounds --rounds.
	MaxRounds = 20
	// MaxUsers bounds --users: one token is signed and held per user.
	MaxUsers = 1_000_000
	// MaxDuration bounds --duration so that a typo cannot load a shared
	// machine for days.
	MaxDuration = 24 * time.Hour
	// SecretFile is where `onair dev` keeps its token secret.
	SecretFile = "var/auth.secret"
)

// RunConfig describes one HTTP load run. Zero values mean the documented
// defaults, except Rate (0 = as fast as Workers allow) and TokenSecret
// (required by every scenario except the baseline).
type RunConfig struct {
	// Scenario is one of Scenarios().
	Scenario string
	// Rate is the request rate per second; 0 means maximum rate with
	// Workers concurrent requests.
	Rate int
	// Duration is how long requests are sent. It must be positive: an
	// unbounded run is refused.
	Duration time.Duration
	// Users and Items are the sizes of the Zipf-distributed populations
	// (user ids 1..Users, item ids 1..Items). 0: DefaultUsers, DefaultItems.
	Users, Items int
	// Target is the base URL of onair's HTTP API. "": DefaultTarget. Only
	// loopback hosts are accepted unless AllowRemote is set.
	Target string
	// AllowRemote lets Target (and E2E's ClickHouse) be a non-loopback host.
	AllowRemote bool
	// TokenSecret is the HS256 secret tokens are signed with.
	TokenSecret []byte
	// ReportDir receives report.txt, results.bin, plot.html and
	// summary.json. "": no files are written.
	ReportDir string
	// Batch is the number of events per POST /v1/events. 0: DefaultBatch.
	Batch int
	// SessionItems shapes a batch as an app that buffers its reports
	// sends it: a listening session over this many items, played one after
	// the other, each reporting its position as it advances. 0: every event
	// of a batch draws its own item (the worst case for the Redis
	// write-back, which then collapses nothing).
	SessionItems int
	// Workers caps concurrent requests. 0: DefaultMaxWorkers when Rate is
	// 0, DefaultPacedMaxCap otherwise.
	Workers int
	// Timeout is the per-request timeout. 0: DefaultTimeout.
	Timeout time.Duration
	// CPUProfile, when set, writes a CPU profile of the load generator
	// during the attack to ReportDir/<attack>.cpu.prof: where its own time
	// goes decides how much of the machine is left for the server.
	CPUProfile bool
	// Baseline, when set, first runs the hello-world baseline at the same
	// rate and duration and puts it and the ratios into the Summary.
	Baseline bool
	// Rounds, with Baseline, repeats the pair (baseline, scenario) this
	// many times, each scenario attack right after its own baseline, and
	// reports the round with the median ratio (every round is listed in
	// Summary.Rounds). On a shared machine whose speed drifts, a ratio of
	// two adjacent runs is steadier than one run's figures, and the median
	// of several is steadier still. 0: one round.
	Rounds int
	// Ceiling, with Baseline, also sends the scenario's own requests to
	// the hello-world server, which answers every route with its hello
	// JSON, right after each scenario attack (Summary.Ceiling). That run
	// is what the requests' shape (method, headers, body, reply) costs
	// the HTTP stack and the load generator with no work behind it: the
	// most any endpoint serving these requests could reach.
	Ceiling bool
	// HelloCommand starts the baseline's hello-world server as a separate
	// process (it gets "--addr 127.0.0.1:0" appended and prints its address).
	// nil: the baseline server runs inside this process.
	HelloCommand []string
	// Progress receives the live progress line once a second. nil: none.
	Progress io.Writer
	// Seed, when set, first gives every user SeedItems unfinished items
	// and waits until they are readable (see Seed); the time it takes is
	// reported in Summary.Seed, apart from the attack. The CLI sets it by
	// default for the scenarios that read history.
	Seed bool
	// SeedItems is the items seeded per user, 1..100. 0: DefaultSeedItems.
	SeedItems int
	// SeedWait bounds the wait for seeded items to be readable.
	// 0: DefaultSeedWait.
	SeedWait time.Duration
}

func (c *RunConfig) setDefaults() {
	if c.Target == "" {
		c.Target = DefaultTarget
	}
	c.Target = strings.TrimRight(c.Target, "/")
	if c.Users == 0 {
		c.Users = DefaultUsers
	}
	if c.Items == 0 {
		c.Items = DefaultItems
	}
	if c.Batch == 0 {
		c.Batch = DefaultBatch
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.SeedItems == 0 {
		c.SeedItems = DefaultSeedItems
	}
	if c.SeedWait == 0 {
		c.SeedWait = DefaultSeedWait
	}
	if c.Workers == 0 {
		c.Workers = DefaultPacedMaxCap
		if c.Rate == 0 {
			c.Workers = DefaultMaxWorkers
		}
	}
}

// validate checks c after setDefaults. needTarget is false for the
// baseline, which attacks its own in-process server.
func (c *RunConfig) validate(needTarget bool) error {
	if needTarget {
		if _, ok := scenarioMixes[c.Scenario]; !ok {
			return fmt.Errorf("unknown --scenario %q (want one of %s)", c.Scenario, strings.Join(Scenarios(), ", "))
		}
	}
	if c.Rate < 0 {
		return fmt.Errorf("--rate must be >= 0 requests/s (0 = max rate), got %d", c.Rate)
	}
	if c.Duration <= 0 || c.Duration > MaxDuration {
		return fmt.Errorf("--duration must be > 0 and <= %s, got %s", MaxDuration, c.Duration)
	}
	if c.Users < 1 || c.Users > MaxUsers {
		return fmt.Errorf("--users must be in 1..%d, got %d", MaxUsers, c.Users)
	}
	if c.Items < 1 {
		return fmt.Errorf("--items must be >= 1, got %d", c.Items)
	}
	if c.Batch < 1 || c.Batch > 1000 {
		return fmt.Errorf("--batch must be in 1..1000 events (the API's limit), got %d", c.Batch)
	}
	if c.SessionItems < 0 || c.SessionItems > maxSessionItems || c.SessionItems > c.Batch {
		return fmt.Errorf("--session-items must be in 0..%d and <= --batch, got %d", maxSessionItems, c.SessionItems)
	}
	if c.Rounds < 0 || c.Rounds > MaxRounds {
		return fmt.Errorf("--rounds must be in 1..%d, got %d", MaxRounds, c.Rounds)
	}
	if c.Rounds > 1 && !c.Baseline {
		return fmt.Errorf("--rounds %d needs --baseline: a round is a baseline run and the scenario run after it", c.Rounds)
	}
	if c.Ceiling && !c.Baseline {
		return errors.New("--ceiling needs --baseline: it is measured against the baseline's hello-world server")
	}
	if c.Workers < 1 {
		return fmt.Errorf("--workers must be >= 1, got %d", c.Workers)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("--timeout must be positive, got %s", c.Timeout)
	}
	if c.Seed && (c.SeedItems < 1 || c.SeedItems > 100 || c.SeedItems > c.Items) {
		return fmt.Errorf("--seed-items must be in 1..100 and <= --items, got %d", c.SeedItems)
	}
	if c.SeedWait < 0 {
		return fmt.Errorf("--seed-wait must be positive, got %s", c.SeedWait)
	}
	if !needTarget {
		return nil
	}
	if err := checkTarget(c.Target, c.AllowRemote); err != nil {
		return err
	}
	if len(c.TokenSecret) == 0 {
		return errNoSecret
	}
	return nil
}

var errNoSecret = errors.New("no token secret: pass --token-secret or set ONAIR_AUTH_SECRET")

// checkTarget accepts http(s) URLs on a loopback host; any host only with
// allowRemote. Load tests on shared networks must not hit a stranger's
// service because of a typo.
func checkTarget(target string, allowRemote bool) error {
	u, err := url.Parse(target)
	if err != nil {
		return fmt.Errorf("bad --target %q: %w", target, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("bad --target %q: scheme must be http or https", target)
	}
	if u.Host == "" {
		return fmt.Errorf("bad --target %q: no host", target)
	}
	if u.RawQuery != "" || (u.Path != "" && u.Path != "/") {
		return fmt.Errorf("bad --target %q: give the base URL only (scheme://host:port)", target)
	}
	return checkLoopback("--target", u.Hostname(), allowRemote)
}

// checkLoopback refuses a non-loopback host unless allowRemote. Names are
// not resolved: only "localhost" and loopback IP literals count.
func checkLoopback(flagName, host string, allowRemote bool) error {
	if allowRemote {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%s host %q is not loopback: pass --allow-remote to load a remote host", flagName, host)
}

// resolveSecret picks the token secret: the flag, else ONAIR_AUTH_SECRET,
// else the dev-mode file SecretFile. The file is read as `onair dev` writes
// it, minus a trailing newline.
func resolveSecret(flagVal string, getenv func(string) string, readFile func(string) ([]byte, error)) ([]byte, error) {
	if flagVal != "" {
		return []byte(flagVal), nil
	}
	if v := getenv("ONAIR_AUTH_SECRET"); v != "" {
		return []byte(v), nil
	}
	b, err := readFile(SecretFile)
	if err == nil {
		b = []byte(strings.TrimRight(string(b), "\r\n"))
		if len(b) > 0 {
			return b, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cannot read token secret from %s: %w", SecretFile, err)
	}
	return nil, errNoSecret
}
