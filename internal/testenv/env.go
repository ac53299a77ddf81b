package testenv

import (
	"os"
	"strings"
)

// onairEnvPrefix starts every variable onair reads (each flag's default);
// testEnvPrefix starts the ones only the test harness reads (this file's
// EnvRedisAddr, EnvClickHouseAddr).
const (
	onairEnvPrefix = "ONAIR_"
	testEnvPrefix  = "ONAIR_TEST_"
)

// ChildEnv is the environment for a process a test starts: the test's own
// environment without any ONAIR_* variable, plus set ("NAME=value" each).
// A developer's or an SRE's shell settings (ONAIR_AUTH_SECRET,
// ONAIR_REDIS_ADDRS, ...) would otherwise become the child's flag defaults
// and make the test depend on who runs it.
func ChildEnv(set ...string) []string {
	env := os.Environ()
	out := make([]string, 0, len(env)+len(set))
	for _, kv := range env {
		if !strings.HasPrefix(kv, onairEnvPrefix) {
			out = append(out, kv)
		}
	}
	return append(out, set...)
}

// ClearOnairEnv unsets every ONAIR_* variable of this process except the
// ONAIR_TEST_* ones, so code under test that reads ONAIR_* in-process (the
// cmd/onair flag defaults, loadtest's secret) sees only what a test sets
// with t.Setenv. Call it first in the TestMain of such a package.
func ClearOnairEnv() {
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, onairEnvPrefix) && !strings.HasPrefix(name, testEnvPrefix) {
			os.Unsetenv(name)
		}
	}
}
