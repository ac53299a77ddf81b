package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onair/onair/internal/testenv"
)

func TestRedactDSN(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := redactDSN(in); got != want {
			t.Errorf("redactDSN(%q) = %q, want %q", in, got, want)
		}
	}
	f("", "")
	f("127.0.0.1:6379", "127.0.0.1:6379")
	f("postgres://onair:pw@db:5432/onair?sslmode=disable", "postgres://onair:***@db:5432/onair?sslmode=disable")
	f("redis://:pw@h:6379/0", "redis://:***@h:6379/0")
	f("redis://user@h:6379", "redis://user@h:6379") // no password to mask
	f("dial postgres://u:p@ss@db/x: refused", "dial postgres://u:***@db/x: refused")
	f("host=db user=onair password=pw dbname=onair", "host=db user=onair password=*** dbname=onair")
	f("host=db PASSWORD='a b\\' c' dbname=x", "host=db PASSWORD=*** dbname=x")
	f("https://h/x?user=u&password=pw&db=x", "https://h/x?user=u&password=***&db=x")
	if got := redactAddrs("redis://:a,b@h1:1", "redis://:c@h2:2"); got != "redis://:***@h1:1,redis://:***@h2:2" {
		t.Errorf("redactAddrs: %q", got)
	}
}

// TestSecretNeverPrints: a secret is "(set)" under every verb, inside a
// config printed with %+v and as a log value; reveal has the value.
func TestSecretNeverPrints(t *testing.T) {
	const v = "hunter2"
	c := config{RedisPassword: v, AuthSecret: v}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("cfg", "password", c.RedisPassword, "cfg", c)
	for _, out := range []string{
		fmt.Sprintf("%v %s %q %d %x %+v %#v", c.RedisPassword, c.RedisPassword, c.RedisPassword, c.RedisPassword, c.RedisPassword, c, c),
		fmt.Sprint(c.AuthSecret), logged.String(),
	} {
		if strings.Contains(out, v) || !strings.Contains(out, "(set)") {
			t.Errorf("printed %q; want (set), never the value", out)
		}
	}
	if c.RedisPassword.reveal() != v {
		t.Errorf("reveal() = %q", c.RedisPassword.reveal())
	}
}

// TestRedactErrAndLogs: a message quoting a secret flag's value or a DSN's
// password is masked in errors (what run prints and /readyz answers) and
// in the log, and the masked error still unwraps.
func TestRedactErrAndLogs(t *testing.T) {
	t.Setenv("ONAIR_REDIS_PASSWORD", "hunter2")
	var c config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.flags(fs, false)
	if err := fs.Parse([]string{"--clickhouse-password", "s3cret"}); err != nil {
		t.Fatal(err)
	}
	base := errors.New("auth hunter2 failed on tcp://u:pw@h and with s3cret")
	err := c.redactErr(fmt.Errorf("ping: %w", base))
	if err.Error() != "ping: auth *** failed on tcp://u:***@h and with ***" || !errors.Is(err, base) {
		t.Errorf("redactErr: %q (unwraps to base: %v)", err, errors.Is(err, base))
	}
	if clean := errors.New("refused"); c.redactErr(clean) != clean || c.redactErr(nil) != nil {
		t.Errorf("redactErr changed an error without secrets")
	}
	d := &deps{cfg: &c}
	if err := d.redacted(func(context.Context) error { return base })(context.Background()); strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a /readyz check's error carries the password: %q", err)
	}

	var out bytes.Buffer
	c.LogLevel = "info"
	log, err := c.newLogger(&out)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("connecting with hunter2", "err", base, "addr", "postgres://u:pw@db/x", "addrs", []string{"s3cret"})
	if s := out.String(); strings.Contains(s, "hunter2") || strings.Contains(s, "s3cret") || strings.Contains(s, ":pw@") {
		t.Errorf("the log carries a secret: %s", s)
	}
}

// secretName is a flag that holds a credential, by its name.
var secretName = regexp.MustCompile(`secret|password|passwd|dsn|credential`)

// commands are the argument lists of every subcommand's help, plus the
// operator's usual mistakes (an unknown flag, a missing setting), whose
// output repeats the usage.
func commands() [][]string {
	var cmds [][]string
	for _, c := range []string{"dev", "serve", "token", "migrate", "seed"} {
		cmds = append(cmds, []string{c, "-h"}, []string{c, "--no-such-flag"})
	}
	for _, c := range []string{"run", "e2e", "baseline", "ws", "hello", "wshello", "faults", "table"} {
		cmds = append(cmds, []string{"loadtest", c, "-h"}, []string{"loadtest", c, "--no-such-flag"})
	}
	return append(cmds, []string{"-h"}, []string{"loadtest", "-h"}, []string{"serve"}, []string{"token"})
}

func runOutput(args ...string) string {
	var out bytes.Buffer
	run(context.Background(), args, &out, &out)
	return out.String()
}

// TestHelpHidesSecrets runs every subcommand's -h (and its usage errors)
// with each secret variable set to a marker and fails if a marker appears:
// help lands in terminals, CI logs and support tickets. Secret flags are
// found by name in the help itself, so a new one (--postgres-dsn) is
// checked without changing this test.
func TestHelpHidesSecrets(t *testing.T) {
	flagName := regexp.MustCompile(`(?m)^\s+-([a-z0-9-]+)`)
	vars := map[string]bool{"ONAIR_AUTH_SECRET": true, "ONAIR_REDIS_PASSWORD": true, "ONAIR_CLICKHOUSE_PASSWORD": true, "ONAIR_POSTGRES_DSN": true}
	var found []string
	for _, args := range commands() {
		for _, m := range flagName.FindAllStringSubmatch(runOutput(args...), -1) {
			if secretName.MatchString(m[1]) && !slices.Contains(found, m[1]) {
				found = append(found, m[1])
				vars[envName(m[1])] = true
			}
		}
	}
	for _, want := range []string{"auth-secret", "redis-password", "clickhouse-password", "token-secret", "ch-password"} {
		if !slices.Contains(found, want) {
			t.Errorf("secret flag --%s not found in any help (found %v): the test no longer sees the flags", want, found)
		}
	}
	markers := map[string]string{}
	for v := range vars {
		m := fmt.Sprintf("mk%dZq", len(markers))
		markers[v] = m
		if strings.HasSuffix(v, "_DSN") {
			t.Setenv(v, "postgres://onair:"+m+"@db:5432/onair")
		} else {
			t.Setenv(v, m)
		}
	}
	if out := runOutput("serve", "-h"); !strings.Contains(out, "(from ONAIR_REDIS_PASSWORD)") {
		t.Errorf("onair serve -h does not say where the Redis password came from:\n%s", out)
	}
	for _, args := range commands() {
		out := runOutput(args...)
		for v, m := range markers {
			if strings.Contains(out, m) {
				t.Errorf("onair %s prints %s's value:\n%s", strings.Join(args, " "), v, out)
			}
		}
	}
}

// TestServeErrorHidesSecrets: a serve that cannot reach Redis names the
// address it tried, but neither the password in its URL nor a secret the
// address happens to quote: not in the error, not in onair's log, not in
// what go-redis logs itself. The real binary, since go-redis's logger is
// the process's.
func TestServeErrorHidesSecrets(t *testing.T) {
	t.Parallel()
	const pw, auth, ch = "hunter2x", "authmarker", "s3cretch"
	bin := testenv.OnairBinary(t)
	for _, addr := range []string{"redis://u:dsnmarker@127.0.0.1:1", "127.0.0.1:" + pw} {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, bin, "serve", "--roles", "api", "--log-level", "debug", "--kafka-brokers", "127.0.0.1:1",
			"--redis-addrs", addr, "--clickhouse-addr", "127.0.0.1:1")
		cmd.Env = append(os.Environ(), "ONAIR_REDIS_PASSWORD="+pw, "ONAIR_AUTH_SECRET="+auth, "ONAIR_CLICKHOUSE_PASSWORD="+ch,
			"ONAIR_POSTGRES_DSN=postgres://onair:pgmarker@127.0.0.1:1/onair")
		out, err := cmd.CombinedOutput()
		cancel()
		s := string(out)
		if err == nil || !strings.Contains(s, "cannot reach Redis") || !strings.Contains(s, "component=go-redis") {
			t.Fatalf("serve against Redis at %s: %v, want a failure to reach Redis and go-redis's log of it:\n%s", addr, err, s)
		}
		for _, m := range []string{pw, auth, ch, "dsnmarker", "pgmarker"} {
			if strings.Contains(s, m) {
				t.Errorf("serve against Redis at %s prints %q:\n%s", addr, m, s)
			}
		}
	}
}
