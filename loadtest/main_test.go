package loadtest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
)

func noEnv(string) string { return "" }

func noFile(string) ([]byte, error) { return nil, fs.ErrNotExist }

func TestParseRunFlags(t *testing.T) {
	f := func(args string, wantErr string) {
		t.Helper()
		_, err := parseRun(strings.Fields(args), io.Discard, noEnv, noFile)
		switch {
		case wantErr == "" && err != nil:
			t.Fatalf("%q: unexpected error %v", args, err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Fatalf("%q: error %v, want one containing %q", args, err, wantErr)
		}
	}
	const s = "--token-secret x "
	f(s+"--scenario progress", "")
	f(s+"--scenario mixed --rate 0 --duration 1s", "")
	f(s+"--scenario progress --target http://localhost:9999/", "")
	f(s+"--scenario progress --target http://[::1]:8080", "")
	f(s+"--scenario progress --target http://10.0.0.5:8080 --allow-remote", "")
	f(s, "--scenario is required")
	f(s+"--scenario nope", `unknown --scenario "nope"`)
	f(s+"--scenario progress --rate -1", "--rate must be >= 0")
	f(s+"--scenario progress --duration 0s", "--duration must be > 0")
	f(s+"--scenario progress --duration 48h", "--duration must be > 0 and <= 24h")
	f(s+"--scenario progress --users 0", "--users must be in 1..")
	f(s+"--scenario progress --users 2000000", "--users must be in 1..")
	f(s+"--scenario progress --items -3", "--items must be >= 1")
	f(s+"--scenario batch --batch 1001", "--batch must be in 1..1000")
	f(s+"--scenario progress --workers -1", "--workers must be >= 1")
	f(s+"--scenario progress --baseline --rounds 5", "")
	f(s+"--scenario progress --baseline --rounds 0", "--rounds must be in 1..20, got 0")
	f(s+"--scenario progress --baseline --rounds 21", "--rounds must be in 1..20, got 21")
	f(s+"--scenario progress --rounds 3", "--rounds 3 needs --baseline")
	f(s+"--scenario progress --baseline --ceiling", "")
	f(s+"--scenario progress --ceiling", "--ceiling needs --baseline")
	f(s+"--scenario progress --target http://10.0.0.5:8080", "not loopback: pass --allow-remote")
	f(s+"--scenario progress --target http://example.com", "not loopback")
	f(s+"--scenario progress --target ftp://127.0.0.1", "scheme must be http or https")
	f(s+"--scenario progress --target http://127.0.0.1:8080/v1", "base URL only")
	f(s+"--scenario progress extra", `unexpected argument "extra"`)
	f(s+"--scenario progress --rate abc", "invalid value")
	f("--scenario progress", "no token secret: pass --token-secret or set ONAIR_AUTH_SECRET")
}

func TestParseE2EAndBaselineFlags(t *testing.T) {
	f := func(args string, wantErr string) {
		t.Helper()
		_, err := parseE2E(strings.Fields(args), io.Discard, noEnv, noFile)
		if (wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), wantErr)) {
			t.Fatalf("%q: error %v, want %q", args, err, wantErr)
		}
	}
	f("--token-secret x", "")
	f("--token-secret x --clickhouse 192.168.1.9:9000", "--clickhouse host \"192.168.1.9\" is not loopback")
	f("--token-secret x --clickhouse 192.168.1.9:9000 --allow-remote", "")
	f("--token-secret x --clickhouse nohost", "want host:port")
	f("--token-secret x --database 'x;drop'", "bad --database")
	f("--token-secret x --wait -1s", "must be positive")
	f("--token-secret x --target http://8.8.8.8", "not loopback")

	if _, err := parseBaseline([]string{"--rate", "-5"}, io.Discard); err == nil || !strings.Contains(err.Error(), "--rate") {
		t.Fatalf("baseline --rate -5: %v", err)
	}
	if _, err := parseBaseline([]string{"--duration", "2s", "--rate", "0"}, io.Discard); err != nil {
		t.Fatal(err)
	}
}

func TestResolveSecret(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "ONAIR_AUTH_SECRET" {
				return v
			}
			return ""
		}
	}
	file := func(b string) func(string) ([]byte, error) {
		return func(p string) ([]byte, error) {
			if p != SecretFile {
				t.Fatalf("read %q", p)
			}
			return []byte(b), nil
		}
	}
	f := func(flagVal string, getenv func(string) string, read func(string) ([]byte, error), want string, wantErr error) {
		t.Helper()
		got, err := resolveSecret(flagVal, getenv, read)
		if string(got) != want || !errors.Is(err, wantErr) {
			t.Fatalf("got %q, %v; want %q, %v", got, err, want, wantErr)
		}
	}
	f("flag", env("env"), file("file"), "flag", nil)
	f("", env("env"), file("file"), "env", nil)
	f("", noEnv, file("file\n"), "file", nil)
	f("", noEnv, file("\n"), "", errNoSecret)
	f("", noEnv, noFile, "", errNoSecret)
}

func TestMainUsage(t *testing.T) {
	f := func(args []string, want int, wantOut string) {
		t.Helper()
		var out, errb bytes.Buffer
		if code := Main(context.Background(), args, &out, &errb); code != want {
			t.Fatalf("%v: exit %d, want %d", args, code, want)
		}
		if !strings.Contains(out.String()+errb.String(), wantOut) {
			t.Fatalf("%v: output lacks %q:\n%s%s", args, wantOut, out.String(), errb.String())
		}
	}
	f(nil, ExitUsage, "usage: onair loadtest")
	f([]string{"bogus"}, ExitUsage, `unknown command "bogus"`)
	f([]string{"help"}, ExitOK, "baseline")
	f([]string{"run", "--token-secret", "x", "--scenario", "zzz"}, ExitUsage, "unknown --scenario")
	f([]string{"run", "-h"}, ExitOK, "-scenario")
}
