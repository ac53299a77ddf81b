package wire

import "testing"

func TestHeadCount(t *testing.T) {
	const now = 1_000
	f := func(counts, seen map[string]string, want int64) {
		t.Helper()
		if got := HeadCount(counts, seen, now); got != want {
			t.Fatalf("HeadCount(%v, %v) = %d, want %d", counts, seen, got, want)
		}
	}
	f(nil, nil, 0)
	f(map[string]string{"a": "5"}, map[string]string{"a": "1000"}, 5)                               // expires now: still counts
	f(map[string]string{"a": "5"}, map[string]string{"a": "999"}, 0)                                // expired
	f(map[string]string{"a": "5"}, nil, 0)                                                          // no expiry: a leftover, not a report
	f(map[string]string{"a": "5"}, map[string]string{"a": "x"}, 0)                                  // unreadable expiry: the same
	f(nil, map[string]string{"a": "2000"}, 0)                                                       // expiry without a count
	f(map[string]string{"a": "5", "b": "4", "c": "3"}, map[string]string{"a": "2000", "b": "1"}, 5) // only a is live
}

func TestKey(t *testing.T) {
	if got, want := Key("p:", 42, KindOnlineSeen), "p:{r42}:online:seen"; got != want {
		t.Fatalf("Key = %q, want %q", got, want)
	}
}
