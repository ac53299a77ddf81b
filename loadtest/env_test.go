package loadtest

import (
	"os"
	"testing"

	"github.com/onair/onair/internal/testenv"
)

// TestMain clears the caller's ONAIR_* variables: Main reads
// ONAIR_AUTH_SECRET and ONAIR_CLICKHOUSE_PASSWORD in this process, and the
// tests must not depend on the shell they run from.
func TestMain(m *testing.M) {
	testenv.ClearOnairEnv()
	os.Exit(m.Run())
}
