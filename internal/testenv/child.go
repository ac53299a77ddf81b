package testenv

import (
	"encoding/json"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// ChildWorld is what a test hands to a child process of its own test
// binary (an aggregator it SIGKILLs at any instant): the servers and the
// names the child works on. It travels as JSON in one environment
// variable, so neither side counts fields by position.
type ChildWorld struct {
	// Brokers are the Kafka seed brokers.
	Brokers []string
	// Redis and ClickHouse are the servers' addresses.
	Redis, ClickHouse string
	// Postgres is a PostgreSQL DSN (a database of PostgresDSN).
	Postgres string `json:",omitempty"`
	// Prefix is the Redis key prefix, Database the ClickHouse database.
	Prefix, Database string
	// Mode tells a child that plays more than one part which ("": its
	// default).
	Mode string
}

// envChildWorld carries the ChildWorld to the child; only a child started
// by StartChild has it.
const envChildWorld = "ONAIR_TEST_CHILD_WORLD"

// StartChild runs the test function test of this test binary in a child
// process that works on w and dies with the test binary (Pdeathsig). The
// child gets ChildEnv; the caller stops it.
func StartChild(t testing.TB, test string, w ChildWorld) *exec.Cmd {
	t.Helper()
	b, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = ChildEnv(envChildWorld + "=" + string(b))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: cannot start the child %s: %v", test, err)
	}
	return cmd
}

// ChildWorldOf returns the world StartChild handed this process. In any
// other run it skips t: the child's test function is not a test of its own.
func ChildWorldOf(t testing.TB) ChildWorld {
	t.Helper()
	v := os.Getenv(envChildWorld)
	if v == "" {
		t.Skip("the body of a child process a test starts (testenv.StartChild)")
	}
	var w ChildWorld
	if err := json.Unmarshal([]byte(v), &w); err != nil {
		t.Fatalf("testenv: %s=%q: %v", envChildWorld, v, err)
	}
	return w
}
