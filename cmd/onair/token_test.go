package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onair/onair/api"
)

// TestToken: `onair token` signs with --auth-secret, else
// ONAIR_AUTH_SECRET, else <data-dir>/auth.secret (created when missing, as
// dev does), and the token verifies with that secret only.
func TestToken(t *testing.T) {
	check := func(tok, secret string, user uint64, role string) {
		t.Helper()
		c, err := api.ParseToken([]byte(secret), tok)
		if err != nil {
			t.Fatalf("token %q does not verify with %q: %v", tok, secret, err)
		}
		if c.UserID != user || c.Role != role {
			t.Fatalf("token claims %+v, want user %d role %q", c, user, role)
		}
		if _, err := api.ParseToken([]byte(secret+"x"), tok); err == nil {
			t.Fatalf("token verifies with another secret")
		}
	}

	t.Setenv("ONAIR_AUTH_SECRET", "")
	os.Unsetenv("ONAIR_AUTH_SECRET")
	dir := t.TempDir()
	check(mintToken(t, "--user", "42", "--role", "admin", "--auth-secret", "flag-secret", "--data-dir", dir), "flag-secret", 42, "admin")
	if _, err := os.Stat(filepath.Join(dir, "auth.secret")); err == nil {
		t.Fatalf("--auth-secret given, yet auth.secret was written")
	}

	// No secret configured: the data dir's file is created, then reused.
	tok := mintToken(t, "--user", "7", "--data-dir", dir)
	b, err := os.ReadFile(filepath.Join(dir, "auth.secret"))
	if err != nil {
		t.Fatal(err)
	}
	fileSecret := strings.TrimSpace(string(b))
	if len(fileSecret) < 32 {
		t.Fatalf("auth.secret %q is too short to be a secret", fileSecret)
	}
	check(tok, fileSecret, 7, "")
	check(mintToken(t, "--user", "8", "--role", "service", "--data-dir", dir), fileSecret, 8, "service")

	// A secret someone wrote (with a newline, as editors do) is used as is.
	dir2 := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir2, "auth.secret"), []byte("written-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	check(mintToken(t, "--user", "9", "--data-dir", dir2), "written-secret", 9, "")

	// The environment beats the file; the flag beats the environment.
	t.Setenv("ONAIR_AUTH_SECRET", "env-secret")
	check(mintToken(t, "--user", "10", "--data-dir", dir2), "env-secret", 10, "")
	check(mintToken(t, "--user", "11", "--data-dir", dir2, "--auth-secret", "flag-secret"), "flag-secret", 11, "")

	fail := func(wantInErr string, args ...string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"token"}, args...), &out, &errb)
		if code == 0 || out.Len() != 0 || !strings.Contains(errb.String(), wantInErr) {
			t.Fatalf("onair token %v: exit %d, stdout %q, stderr %q; want a failure naming %s and no token",
				args, code, out.String(), errb.String(), wantInErr)
		}
	}
	fail("--user", "--role", "admin")
	fail("--user", "--user", "0")
	fail("user", "--user", "-3")
	fail("superuser", "--user", "1", "--role", "superuser")
	fail("ttl", "--user", "1", "--ttl", "-1h")
	fail("unexpected argument", "--user", "1", "extra")
}

func TestMalformedEnvIsAnError(t *testing.T) {
	t.Setenv("ONAIR_REDIS_FLUSH", "100")
	t.Setenv("ONAIR_BATCH_ROWS", "many")
	var cfg config
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	cfg.flags(fs, true)
	err := cfg.validate()
	if err == nil {
		t.Fatal("malformed ONAIR_* values accepted")
	}
	for _, want := range []string{"ONAIR_REDIS_FLUSH", "ONAIR_BATCH_ROWS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}
