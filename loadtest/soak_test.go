package loadtest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestJudgeSoak(t *testing.T) {
	const mb = 1 << 20
	f := func(rss []uint64, errs uint64, wantProblems int, wantSpread float64) {
		t.Helper()
		var s SoakSummary
		for i, r := range rss {
			s.Samples = append(s.Samples, SoakSample{End: time.Duration(i+1) * time.Minute, RSSBytes: r * mb})
		}
		s.Samples[len(s.Samples)-1].ServerErrors = errs
		judgeSoak(&s, 2*time.Minute, 0.10)
		if len(s.Problems) != wantProblems || fmt.Sprintf("%.3f", s.Spread) != fmt.Sprintf("%.3f", wantSpread) {
			t.Errorf("rss %v, %d errors: problems %q, spread %.3f; want %d problems, spread %.3f", rss, errs, s.Problems, s.Spread, wantProblems, wantSpread)
		}
	}
	f([]uint64{100, 900, 1000, 1050, 1020, 1000}, 0, 0, 0.05) // the warm-up's climb does not count
	f([]uint64{100, 900, 1000, 1100, 1200, 1300}, 0, 1, 0.30) // still rising: fails
	f([]uint64{100, 900, 1000, 1000, 1000, 1000}, 3, 1, 0)    // flat, but 5xx
	f([]uint64{100, 900, 1000}, 0, 1, 0)                      // one sample after the warm-up: too short
}

func TestScrapeMemory(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, "# HELP x\ngo_memstats_heap_inuse_bytes 2.5e+08\nprocess_resident_memory_bytes 1.073741824e+09\ngo_memstats_sys_bytes 1.2e+09\nother 1\n")
	}))
	defer srv.Close()
	var s SoakSample
	if err := scrapeMemory(context.Background(), srv.Client(), srv.URL, &s); err != nil {
		t.Fatal(err)
	}
	if s.RSSBytes != 1<<30 || s.HeapInuseBytes != 250_000_000 || s.GoSysBytes != 1_200_000_000 {
		t.Errorf("scraped %+v", s)
	}
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "other 1\n") }))
	defer bad.Close()
	if err := scrapeMemory(context.Background(), bad.Client(), bad.URL, &s); err == nil || !strings.Contains(err.Error(), "lacks") {
		t.Errorf("a /metrics without the gauges gave %v", err)
	}
}
