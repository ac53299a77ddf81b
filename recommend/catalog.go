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
	cache map[string][]*Item
}

// NewSnapshot indexes items (the map is kept: the caller must not change it).
func NewSnapshot(version uint64, items map[uint64]*Item) *Snapshot {
	s := &Snapshot{Version: version, items: items, byCat: map[string][]*Item{}, byTag: map[string][]*Item{}, cache: map[string][]*Item{}}
	s.ranked = make([]*Item, 0, len(items))
	for _, it := range items {
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

// candidates returns the online items matching f, ranked. live restricts
// them to the live and radio business lines.
func (s *Snapshot) candidates(f Filter, live bool) []*Item {
	key := filterKey(f, live)
	s.mu.Lock()
	c, ok := s.cache[key]
	s.mu.Unlock()
	if ok {
		return c
	}
	c = s.match(f, live)
	s.mu.Lock()
	s.cache[key] = c
	s.mu.Unlock()
	return c
}

func (s *Snapshot) match(f Filter, live bool) []*Item {
	// Start from the smallest index that must hold every match.
	base := s.ranked
	switch {
	case len(f.Categories) == 1:
		base = s.byCat[f.Categories[0]]
	case len(f.Categories) > 1:
		base = s.union(f.Categories, s.byCat)
	case len(f.Tags) > 0:
		base = s.union(f.Tags, s.byTag)
	}
	out := make([]*Item, 0, min(len(base), 1024))
	for _, it := range base {
		if matches(it, f) && (!live || it.Biz == "live" || it.Biz == "radio") {
			out = append(out, it)
		}
	}
	return out
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
