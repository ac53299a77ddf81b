package main

import (
	"os"
	"testing"

	"github.com/onair/onair/internal/testenv"
)

// TestMain clears the caller's ONAIR_* variables: run and config read them
// as flag defaults in this process, and the tests must not depend on the
// shell they run from (tests that need one set it with t.Setenv).
func TestMain(m *testing.M) {
	testenv.ClearOnairEnv()
	os.Exit(m.Run())
}
