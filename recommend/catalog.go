package recommend

import (
	"cmp"
	"slices"
	"strings"
	"sync"
)

// Snapshot is an immutable view of the catalog that playlists are built
// from: every item by id, and the online items ranked (score, then newest
// online_at, then id), also per category and per tag. Candidate lists per
// filter are computed once per snapshot and shared by every build.
type Snapshot struct {
	// Version counts the snapshots a Catalog published.
	Version uint64
	items   map[uint64]*Item
	ranked  []*Item
	byCat   map[string][]*Item
	byTag   map[string][]*Item

	mu    sync.Mutex
	cache map[string]*candList
}

// NewSnapshot indexes items (the map is kept: the caller must not change it).
func NewSnapshot(version uint64, items map[uint64]*Item) *Snapshot {
	s := &Snapshot{Version: version, items: items, byCat: map[string][]*Item{}, byTag: map[string][]*Item{}, cache: map[string]*candList{}}
	s.ranked = make([]*Item, 0, len(items))
	for _, it := range items {
		if it.affKeys == nil {
			it.affKeys = make([]string, 0, 1+len(it.Tags))
			it.affKeys = append(it.affKeys, "c:"+it.Category)
			for _, t := range it.Tags {
				it.affKeys = append(it.affKeys, "t:"+t)
			}
		}
		if it.Status == StatusOnline {
			s.ranked = append(s.ranked, it)
		}
	}
	slices.SortFunc(s.ranked, rankCmp)
	for _, it := range s.ranked { // in rank order, so every index is ranked
		s.byCat[it.Category] = append(s.byCat[it.Category], it)
		for _, t := range it.Tags {
			s.byTag[t] = append(s.byTag[t], it)
		}
	}
	return s
}

// rankCmp orders by score, then recency, then id: the public order.
func rankCmp(a, b *Item) int {
	if c := cmp.Compare(b.Score, a.Score); c != 0 {
		return c
	}
	if c := cmp.Compare(b.OnlineAt, a.OnlineAt); c != 0 {
		return c
	}
	return cmp.Compare(a.ItemID, b.ItemID)
}

// Item returns the item with id, if known.
func (s *Snapshot) Item(id uint64) (*Item, bool) {
	it, ok := s.items[id]
	return it, ok
}

// Len is the number of items, online or not.
func (s *Snapshot) Len() int { return len(s.items) }

// candidates returns the online items matching f, ranked, as a list
// matched lazily: a build needs the first few hundred at most, so only that
// much of a category's index is ever filtered. live restricts them to the
// live and radio business lines. Lists are shared by every build on the
// snapshot.
func (s *Snapshot) candidates(f Filter, live bool) *candList {
	key := filterKey(f, live)
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cache[key]
	if !ok {
		c = &candList{base: s.base(f), f: f, live: live}
		s.cache[key] = c
	}
	return c
}

// base is the smallest ranked index that holds every match of f.
func (s *Snapshot) base(f Filter) []*Item {
	switch {
	case len(f.Categories) == 1:
		return s.byCat[f.Categories[0]]
	case len(f.Categories) > 1:
		return s.union(f.Categories, s.byCat)
	case len(f.Tags) > 0:
		return s.union(f.Tags, s.byTag)
	}
	return s.ranked
}

// candList is a filter's matches, extended on demand.
type candList struct {
	mu      sync.Mutex
	base    []*Item
	pos     int // next index of base to look at
	matched []*Item
	f       Filter
	live    bool
}

// upto returns at least n matches, or all there are. Elements below the
// returned length never change, so callers read them without the lock.
func (c *candList) upto(n int) []*Item {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.matched) < n && c.pos < len(c.base) {
		it := c.base[c.pos]
		c.pos++
		if matches(it, c.f) && (!c.live || it.Biz == "live" || it.Biz == "radio") {
			c.matched = append(c.matched, it)
		}
	}
	return c.matched
}

// each calls f on the matches in rank order until f returns true.
func (c *candList) each(f func(*Item) bool) {
	m := c.upto(32)
	for i := 0; i < len(m); i++ {
		if f(m[i]) {
			return
		}
		if i == len(m)-1 {
			m = c.upto(2 * len(m))
		}
	}
}

func (s *Snapshot) union(keys []string, idx map[string][]*Item) []*Item {
	seen := map[uint64]bool{}
	var out []*Item
	for _, k := range keys {
		for _, it := range idx[k] {
			if !seen[it.ItemID] {
				seen[it.ItemID] = true
				out = append(out, it)
			}
		}
	}
	slices.SortFunc(out, rankCmp)
	return out
}

// matches is the filter rule of Filter's doc comment.
func matches(it *Item, f Filter) bool {
	if len(f.Categories) > 0 && !slices.Contains(f.Categories, it.Category) {
		return false
	}
	if f.Region != "" && it.Region != f.Region {
		return false
	}
	if len(f.Tags) == 0 {
		return true
	}
	for _, t := range f.Tags {
		if it.hasTag(t) {
			return true
		}
	}
	return false
}

func filterKey(f Filter, live bool) string {
	var b strings.Builder
	if live {
		b.WriteString("L|")
	}
	b.WriteString(strings.Join(f.Categories, ","))
	b.WriteByte('|')
	b.WriteString(strings.Join(f.Tags, ","))
	b.WriteByte('|')
	b.WriteString(f.Region)
	return b.String()
}
