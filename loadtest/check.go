package loadtest

import "slices"

// CheckResult compares the events a run got 202 for with what ClickHouse
// holds.
type CheckResult struct {
	// Accepted is the number of distinct accepted event ids.
	Accepted int `json:"accepted"`
	// Found is how many accepted ids ClickHouse holds at least once.
	Found int `json:"found"`
	// Missing lists accepted ids ClickHouse does not hold, sorted.
	Missing []string `json:"missing"`
	// Duplicated maps ids ClickHouse holds more than once to their count.
	Duplicated map[string]uint64 `json:"duplicated"`
	// Unexpected lists ids of this run that ClickHouse holds but no 202
	// announced, sorted: requests that timed out on the client yet reached
	// Kafka. They are not an error (the client could not know), but a
	// retry without the same event_id would have duplicated them.
	Unexpected []string `json:"unexpected"`
}

// OK reports whether every accepted event is present exactly once.
func (r CheckResult) OK() bool { return len(r.Missing) == 0 && len(r.Duplicated) == 0 }

// Check is the exactness rule of the e2e run: every accepted event id must
// appear in counts (event_id -> rows in onair.events) exactly once.
// Duplicates are reported for every id of the run, accepted or not.
func Check(accepted []string, counts map[string]uint64) CheckResult {
	r := CheckResult{Missing: []string{}, Duplicated: map[string]uint64{}, Unexpected: []string{}}
	seen := make(map[string]struct{}, len(accepted))
	for _, id := range accepted {
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		if counts[id] == 0 {
			r.Missing = append(r.Missing, id)
		} else {
			r.Found++
		}
	}
	r.Accepted = len(seen)
	for id, n := range counts {
		if n > 1 {
			r.Duplicated[id] = n
		}
		if _, ok := seen[id]; !ok && n > 0 {
			r.Unexpected = append(r.Unexpected, id)
		}
	}
	slices.Sort(r.Missing)
	slices.Sort(r.Unexpected)
	return r
}
