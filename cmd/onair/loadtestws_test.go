package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/onair/onair/internal/testenv"
)

// TestLoadtestWSThroughAPI: `onair loadtest ws --source api` against a
// real `onair dev` opens its room over the API, POSTs every danmaku with
// a 202 (from enough users that none exceeds the default per-user danmaku
// rate of 2/s per room) and sees each reach every viewer once; exit 0.
func TestLoadtestWSThroughAPI(t *testing.T) {
	t.Parallel()
	o := testenv.StartOnair(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"loadtest", "ws", "--source", "api", "--target", o.URL, "--ops", o.OpsURL, "--token-secret", string(o.Secret),
		"--clients", "20", "--room", "4242", "--rate", "10", "--duration", "2s"}, &out, &errb)
	stdout := out.String()
	if code != 0 || !strings.Contains(stdout, "sent 20 (0 failed); deliveries 400 of 400 expected, lost 0, duplicates 0") {
		t.Fatalf("onair loadtest ws --source api: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, errb.String())
	}
}
