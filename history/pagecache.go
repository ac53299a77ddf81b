package history

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/promreg"
)

// DefaultPageCache is how many history pages a Store keeps by default. A
// page of 20 items takes ~5 KB with its rendered reply: ~80 MB in all.
const DefaultPageCache = 1 << 14

// pageCache keeps recently served history pages, each with the user's
// version (meta "v") it was read at. Every script that changes a user's
// keys advances the version (bump_version in scripts.go), so a cached page
// is served only after Redis confirms, in the same round trip that would
// otherwise start the read, that nothing changed since: the cache saves
// the timeline range, the values and their decoding, never exactness.
//
// Only pages Redis served completely are cached: a page that continued
// into ClickHouse also depends on rows Redis does not version.
type pageCache struct {
	max int

	mu    sync.Mutex
	pages map[pageKey]cachedPage

	hits, misses prometheus.Counter
}

type pageKey struct {
	user   uint64
	biz    ingest.Biz
	limit  int
	cursor string
}

type cachedPage struct {
	version string
	page    Page
}

func newPageCache(max int, reg prometheus.Registerer) (*pageCache, error) {
	c := &pageCache{max: max, pages: make(map[pageKey]cachedPage)}
	lookups := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "onair_history_page_cache_lookups_total",
		Help: "History page reads by page cache outcome: hit (Redis confirmed the cached page's version) or miss.",
	}, []string{"result"})
	// a registry shared with another Store shares the series
	lookups, err := promreg.Register(reg, lookups)
	if err != nil {
		return nil, err
	}
	c.hits, c.misses = lookups.WithLabelValues("hit"), lookups.WithLabelValues("miss")
	return c, nil
}

// get returns the cached page for k and the version it was read at.
func (c *pageCache) get(k pageKey) (cachedPage, bool) {
	c.mu.Lock()
	p, ok := c.pages[k]
	c.mu.Unlock()
	return p, ok
}

func (c *pageCache) put(k pageKey, version string, p Page) {
	c.mu.Lock()
	if _, ok := c.pages[k]; !ok && len(c.pages) >= c.max {
		for old := range c.pages { // evict an arbitrary page
			delete(c.pages, old)
			break
		}
	}
	c.pages[k] = cachedPage{version: version, page: p}
	c.mu.Unlock()
}
