package recommend

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"slices"
	"time"
)

// ListenerState is what a personal playlist needs of a listener.
type ListenerState struct {
	// Excluded are items finished or skipped recently.
	Excluded map[uint64]bool
	// Affinity weighs "t:<tag>" and "c:<category>" keys: plays add, skips
	// subtract.
	Affinity map[string]float64
}

// Seed is the seed of a personal playlist: a hash of (listener, station,
// daypart occurrence), so the order is stable within the daypart.
func Seed(listener, station uint64, w Window) uint64 {
	h := fnv.New64a()
	var b [24]byte
	binary.LittleEndian.PutUint64(b[0:], listener)
	binary.LittleEndian.PutUint64(b[8:], station)
	binary.LittleEndian.PutUint64(b[16:], uint64(w.Start.UnixMilli()))
	h.Write(b[:])
	return h.Sum64()
}

// Personalize makes a listener's playlist from the public one, at most
// limit entries. It is a pure function of its arguments:
//   - entries whose item is excluded for the listener, or no longer
//     playable in snap at now (taken offline since the build), are left out;
//   - each personal slot takes, from its slot's pool, the candidate with
//     the highest affinity score (ties by a hash of seed and item), that is
//     not excluded, not elsewhere in the list and keeps separation;
//   - the separation rule holds over the result: an entry that would break
//     it once others are left out moves down until it fits, else is dropped.
//
// The empty ListenerState (and seed) gives the public playlist minus what
// went offline.
func Personalize(pl *Playlist, snap *Snapshot, st *Station, ls ListenerState, seed uint64, now time.Time, limit int) ([]Entry, []Relaxed) {
	p := personalizer{pl: pl, snap: snap, ls: ls, seed: seed, now: now.UnixMilli(), sep: st.separation()}
	relaxed := slices.Clone(pl.Relaxed)
	out := make([]Entry, 0, limit)
	var deferred []Entry
	var recent []*Item
	// add places e unless its item is already in the list (a personal
	// slot may have taken an item the public list has further down).
	add := func(e Entry, it *Item) {
		if p.used.has(it.ItemID) {
			return
		}
		p.used = append(p.used, it.ItemID)
		out = append(out, e)
		recent = append(recent, it)
		if n := p.sep.Window - 1; len(recent) > n {
			recent = recent[len(recent)-n:]
		}
	}
	for i := 0; i < len(pl.Entries) && len(out) < limit; i++ {
		// entries deferred for separation go first once they fit
		for j := 0; j < len(deferred); j++ {
			if it, _ := snap.Item(deferred[j].ItemID); separated(recent, it, p.sep) {
				add(deferred[j], it)
				deferred = slices.Delete(deferred, j, j+1)
				j--
			}
		}
		e := pl.Entries[i]
		if e.ref >= 0 {
			if it, reason := p.personal(e.ref, recent); it != nil {
				e.ItemID, e.Reason = it.ItemID, reason
				add(e, it)
			} else if it, ok := snap.Item(e.ItemID); ok && p.ok(it) && separated(recent, it, p.sep) {
				add(e, it)
			}
			continue
		}
		it, ok := snap.Item(e.ItemID)
		if !ok || !p.ok(it) || p.used.has(it.ItemID) {
			continue
		}
		if separated(recent, it, p.sep) {
			add(e, it)
		} else {
			deferred = append(deferred, e)
		}
	}
	if len(deferred) > 0 && len(out) < limit {
		relaxed = append(relaxed, Relaxed{Rule: "order", Slot: "",
			Reason: fmt.Sprintf("%d entries dropped: once this listener's finished or skipped items were left out they would break separation", len(deferred))})
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, relaxed
}

type personalizer struct {
	pl     *Playlist
	snap   *Snapshot
	ls     ListenerState
	seed   uint64
	now    int64
	sep    Separation
	used   idSet
	ranked map[int][]scored // per pool, ordered once per request
}

// idSet is a small set: a list this short is faster scanned than hashed.
type idSet []uint64

func (s idSet) has(id uint64) bool { return slices.Contains(s, id) }

type scored struct {
	it    *Item
	score float64
	key   string
	tie   uint64
}

// ok: playable now and not excluded for the listener.
func (p *personalizer) ok(it *Item) bool {
	return it.Status == StatusOnline && !p.ls.Excluded[it.ItemID] &&
		(it.EndsAt == 0 || p.now < it.EndsAt)
}

// personal picks a personal slot's item: the first of its pool, in the
// listener's order (affinity, then the seeded tie-break), that is still
// free and keeps separation.
func (p *personalizer) personal(ref int, recent []*Item) (*Item, string) {
	order, ok := p.ranked[ref]
	if !ok {
		for _, cand := range p.pl.pools[ref] {
			it, ok := p.snap.Item(cand.ItemID) // the current version
			if !ok || !p.ok(it) {
				continue
			}
			score, key := affinity(it, p.ls.Affinity)
			order = append(order, scored{it, score, key, mix(p.seed, it.ItemID)})
		}
		slices.SortFunc(order, func(a, b scored) int {
			if c := cmp.Compare(b.score, a.score); c != 0 {
				return c
			}
			return cmp.Compare(a.tie, b.tie)
		})
		if p.ranked == nil {
			p.ranked = map[int][]scored{}
		}
		p.ranked[ref] = order
	}
	for _, c := range order {
		if p.used.has(c.it.ItemID) || !separated(recent, c.it, p.sep) {
			continue
		}
		if c.key == "" {
			return c.it, "personal: station pick (no affinity yet)"
		}
		return c.it, "personal: affinity " + c.key
	}
	return nil, ""
}

// affinity scores it for a listener: the sum of its category's and tags'
// weights, and the key that weighed most ("category:news", "tag:jazz").
func affinity(it *Item, aff map[string]float64) (float64, string) {
	if len(aff) == 0 {
		return 0, ""
	}
	score, top, topW := 0.0, "", 0.0
	for _, k := range it.affKeys {
		w := aff[k]
		score += w
		if w > topW {
			top, topW = k, w
		}
	}
	if top == "" {
		return score, ""
	}
	if top[0] == 'c' {
		return score, "category:" + top[2:]
	}
	return score, "tag:" + top[2:]
}

// mix hashes (seed, id) into a tie-break order.
func mix(seed, id uint64) uint64 {
	x := seed ^ (id * 0x9e3779b97f4a7c15)
	x ^= x >> 31
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 29
	return x
}
