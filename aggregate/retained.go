package aggregate

// What the aggregator keeps in memory, and for how long (DESIGN.md, "The
// aggregator's memory bound"). Every map below is per owned partition and
// is replaced, never emptied in place, when it is cut: Go maps do not
// shrink, so a map that once held a burst would keep its buckets.
//
//   - dirty: entries reported since the last write-back cut (RedisFlush).
//   - held and progress: entries written back since the last progress cut
//     (ProgressFlush): what Redis holds beyond ClickHouse, and the rows
//     that will go to onair.progress.
//   - the running progress job's rows and held states: the window before,
//     until its INSERT lands.
//   - retired: a landed window's held states, until an epoch check that
//     began after it (the next RedisFlush) confirms Redis lost nothing.
//   - events: event rows awaiting ClickHouse, at most maxBufferedBatches ×
//     BatchRows.
//
// So at a steady load the entries kept are at most the distinct history
// entries of two progress windows, and an idle aggregator keeps none once
// its last window has landed and been confirmed.

// Retained counts what an aggregator holds in memory.
type Retained struct {
	// Dirty, Held, Progress and Retired count history entries (a user,
	// business line and item); InFlight counts those of the running
	// write-back and progress jobs.
	Dirty, Held, Progress, Retired, InFlight int
	// Events counts event rows awaiting ClickHouse, a running flush's
	// included.
	Events int
}

// Entries is the history entries held, in every state.
func (r Retained) Entries() int { return r.Dirty + r.Held + r.Progress + r.Retired + r.InFlight }

// Retained reports what a holds now.
func (a *Aggregator) Retained() Retained {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.retained()
}

// retained counts what a holds. The caller holds mu.
func (a *Aggregator) retained() Retained {
	var r Retained
	for _, p := range a.parts {
		r.Dirty += len(p.dirty)
		r.Held += len(p.held)
		r.Progress += len(p.progress)
		r.Events += len(p.events)
	}
	for _, rh := range a.retired {
		for _, m := range rh.held {
			r.Retired += len(m)
		}
	}
	if a.wb != nil {
		r.InFlight += len(a.wb.ups)
	}
	if j := a.job; j != nil {
		r.InFlight += j.entries
	}
	if e := a.events; e != nil {
		for _, p := range e.parts {
			r.Events += len(p.events)
		}
	}
	return r
}

// observeRetained sets the retained gauges. The caller holds mu.
func (a *Aggregator) observeRetained() {
	r := a.retained()
	for state, n := range map[string]int{"dirty": r.Dirty, "held": r.Held, "progress": r.Progress,
		"retired": r.Retired, "in_flight": r.InFlight, "events": r.Events} {
		a.m.retained.WithLabelValues(state).Set(float64(n))
	}
}
