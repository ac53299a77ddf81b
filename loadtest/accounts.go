package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/onair/onair/internal/apiclient"
)

// The accounts scenario (`onair loadtest accounts`): POST /v1/auth/login
// of existing users and GET /v1/me, half and half, at --rate. It needs
// dev sign-in (onair dev, or serve --dev-login): codes come back in the
// sms-code reply. Steps: sign up --users users (sms-code + login each),
// wait out the one-code-a-minute rule, ask every user for a fresh code,
// then attack: each login spends one user's fresh code, each /v1/me uses a
// signed-in user's token.

// AccountsConfig configures Accounts.
type AccountsConfig struct {
	Target      string
	AllowRemote bool
	// Rate is requests per second, logins and /v1/me together.
	Rate     int
	Duration time.Duration
	// Users signed up first; 0 = one per login of the attack.
	Users int
	// Workers sign users up and ask codes in parallel.
	Workers  int
	Timeout  time.Duration
	Progress io.Writer
}

// AccountsSummary is a run's figures, per route.
type AccountsSummary struct {
	SignUp time.Duration
	Routes map[string]*vegeta.Metrics
}

func parseAccounts(args []string, stderr io.Writer) (AccountsConfig, error) {
	var cfg AccountsConfig
	fs := newFlagSet("accounts", stderr)
	fs.StringVar(&cfg.Target, "target", DefaultTarget, "base URL of onair's HTTP API (dev sign-in on)")
	fs.BoolVar(&cfg.AllowRemote, "allow-remote", false, "allow non-loopback targets")
	fs.IntVar(&cfg.Rate, "rate", 500, "requests per second (login and GET /v1/me, half each)")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "attack duration")
	fs.IntVar(&cfg.Users, "users", 0, "users signed up first (0 = as many as the attack logs in)")
	fs.IntVar(&cfg.Workers, "workers", 32, "parallel requests while signing up")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "per-request timeout")
	if err := parseArgs(fs, args); err != nil {
		return cfg, err
	}
	logins := cfg.Rate * int(cfg.Duration/time.Second) / 2
	switch {
	case cfg.Rate < 2:
		return cfg, fmt.Errorf("--rate must be >= 2, got %d", cfg.Rate)
	case cfg.Duration < time.Second || cfg.Duration > MaxDuration:
		return cfg, fmt.Errorf("--duration must be in 1s..%s, got %s", MaxDuration, cfg.Duration)
	case cfg.Users != 0 && cfg.Users < logins:
		return cfg, fmt.Errorf("--users %d < the %d logins of the attack (each needs a fresh code, one per user per minute)", cfg.Users, logins)
	case cfg.Workers < 1:
		return cfg, fmt.Errorf("--workers must be >= 1")
	}
	if cfg.Users == 0 {
		cfg.Users = logins + 1
	}
	cfg.Progress = stderr
	cfg.Target = strings.TrimRight(cfg.Target, "/")
	return cfg, checkTarget(cfg.Target, cfg.AllowRemote)
}

type acctUser struct {
	phone, code, token string
	sent               time.Time // when its first code was asked
}

// Accounts runs the scenario.
func Accounts(ctx context.Context, cfg AccountsConfig) (AccountsSummary, error) {
	s := AccountsSummary{Routes: map[string]*vegeta.Metrics{}}
	client := apiclient.Client{Base: cfg.Target, HTTP: newClient(cfg.Timeout, nil)}
	run := rand.IntN(900) + 100
	users := make([]acctUser, cfg.Users)
	for i := range users {
		users[i].phone = fmt.Sprintf("+8617%03d%06d", run, i) // +86 17x: 11 digits, a fresh range per run
	}
	t0 := time.Now()
	fmt.Fprintf(cfg.Progress, "signing up %d users...\n", len(users))
	if err := parallel(ctx, cfg.Workers, len(users), func(i int) error {
		u := &users[i]
		u.sent = time.Now()
		code, err := smsCode(ctx, client, u.phone)
		if err != nil {
			return err
		}
		var sess struct{ Token string }
		if err := client.Do(ctx, http.MethodPost, "/v1/auth/login", map[string]string{"phone": u.phone, "code": code}, &sess); err != nil {
			return err
		}
		u.token = sess.Token
		return nil
	}); err != nil {
		return s, fmt.Errorf("sign-up: %w", err)
	}
	s.SignUp = time.Since(t0)
	fmt.Fprintf(cfg.Progress, "signed up in %s; asking fresh codes as each phone's minute passes...\n", s.SignUp.Round(time.Millisecond))
	if err := parallel(ctx, cfg.Workers, len(users), func(i int) error {
		select { // one code per phone per minute
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(users[i].sent.Add(61 * time.Second))):
		}
		var err error
		users[i].code, err = smsCode(ctx, client, users[i].phone)
		return err
	}); err != nil {
		return s, fmt.Errorf("fresh codes: %w", err)
	}
	fmt.Fprintf(cfg.Progress, "attacking at %d/s for %s...\n", cfg.Rate, cfg.Duration)
	var next atomic.Int64
	var flip atomic.Uint64
	targeter := func(t *vegeta.Target) error {
		if flip.Add(1)%2 == 0 {
			i := next.Add(1) - 1
			if int(i) >= len(users) {
				return vegeta.ErrNoTargets
			}
			b, _ := json.Marshal(map[string]string{"phone": users[i].phone, "code": users[i].code})
			*t = vegeta.Target{Method: http.MethodPost, URL: cfg.Target + "/v1/auth/login", Body: b,
				Header: http.Header{"Content-Type": {"application/json"}}}
			return nil
		}
		u := users[rand.IntN(len(users))]
		*t = vegeta.Target{Method: http.MethodGet, URL: cfg.Target + "/v1/me", Header: http.Header{"Authorization": {"Bearer " + u.token}}}
		return nil
	}
	atk := vegeta.NewAttacker(vegeta.Client(newClient(cfg.Timeout, nil)), vegeta.Timeout(cfg.Timeout), vegeta.KeepAlive(true))
	for r := range atk.Attack(targeter, vegeta.Rate{Freq: cfg.Rate, Per: time.Second}, cfg.Duration, "accounts") {
		route := "GET /v1/me"
		if strings.HasSuffix(r.URL, "/login") {
			route = "POST /v1/auth/login"
		}
		m := s.Routes[route]
		if m == nil {
			m = &vegeta.Metrics{}
			s.Routes[route] = m
		}
		m.Add(r)
		if ctx.Err() != nil {
			atk.Stop()
		}
	}
	for _, m := range s.Routes {
		m.Close()
	}
	return s, nil
}

func smsCode(ctx context.Context, c apiclient.Client, phone string) (string, error) {
	var r struct {
		DevCode string `json:"dev_code"`
	}
	if err := c.Do(ctx, http.MethodPost, "/v1/auth/sms-code", map[string]string{"phone": phone}, &r); err != nil {
		return "", err
	}
	if r.DevCode == "" {
		return "", errors.New("no dev_code in the sms-code reply: the target needs dev sign-in (onair dev, or serve --dev-login)")
	}
	return r.DevCode, nil
}

// parallel runs call(0..n-1) on workers goroutines; the first error stops it.
func parallel(ctx context.Context, workers, n int, call func(i int) error) error {
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := call(i); err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n))
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// TextAccounts prints a run's figures, one line per route.
func TextAccounts(w io.Writer, cfg AccountsConfig, s AccountsSummary) {
	fmt.Fprintf(w, "accounts: %d users signed up in %s; attack %d/s for %s (login and /v1/me, half each)\n",
		cfg.Users, s.SignUp.Round(time.Millisecond), cfg.Rate, cfg.Duration)
	for _, route := range []string{"POST /v1/auth/login", "GET /v1/me"} {
		m := s.Routes[route]
		if m == nil {
			continue
		}
		fmt.Fprintf(w, "  %-20s %6d req  %6.1f/s  ok %.2f%%  p50 %s  p95 %s  p99 %s  max %s  codes %v\n", route, m.Requests, m.Rate,
			100*m.Success, m.Latencies.P50.Round(10*time.Microsecond), m.Latencies.P95.Round(10*time.Microsecond),
			m.Latencies.P99.Round(10*time.Microsecond), m.Latencies.Max.Round(10*time.Microsecond), m.StatusCodes)
	}
}
