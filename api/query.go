package api

import (
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/onair/onair/history"
	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/refusal"
)

// strictQuery is the engine's middleware that refuses a query string that
// cannot be parsed (bad percent-encoding such as "%%%", a ';' separator)
// with 400 invalid_argument naming the field "query". gin's c.Query drops
// the parse error and with it every parameter, so a request with a
// mistyped query would otherwise run as if it had none (a first page for a
// broken cursor). Unknown parameters are still ignored.
func strictQuery(c *gin.Context) {
	if raw := c.Request.URL.RawQuery; raw != "" {
		if _, err := url.ParseQuery(raw); err != nil {
			WriteError(c, refusal.Invalidf("query", "cannot parse the query string: %v", err))
			return
		}
	}
	c.Next()
}

// pageQuery is the query of GET /v1/history and /v1/continue (continue has
// no cursor).
type pageQuery struct {
	biz    ingest.Biz // 0 = every business line
	limit  int
	cursor string // opaque; the history store validates it
}

// parsePageQuery reads biz, limit and cursor from q: biz absent or empty =
// every business line, else one of the six names; limit absent or empty =
// DefaultPageLimit, else an integer 1..MaxPageLimit. A parameter given more
// than once is refused, since which one counts would be a guess.
func parsePageQuery(q url.Values) (pageQuery, *refusal.Error) {
	var p pageQuery
	var e *refusal.Error
	if p.biz, e = parseBiz(q); e != nil {
		return p, e
	}
	if p.limit, e = queryInt(q, "limit", DefaultPageLimit, 1, MaxPageLimit); e != nil {
		return p, e
	}
	p.cursor, e = single(q, "cursor")
	return p, e
}

// parseBiz reads the optional biz; absent or empty = 0 (every biz).
func parseBiz(q url.Values) (ingest.Biz, *refusal.Error) {
	v, e := single(q, "biz")
	if e != nil || v == "" {
		return ingest.BizNone, e
	}
	b, ok := ingest.ParseBiz(v)
	if !ok {
		return 0, badBiz(v)
	}
	return b, nil
}

// parseItems reads GET /v1/progress's items: 1..MaxProgressItems
// comma-separated biz:item_id keys, ids in 1..2⁶³−1.
func parseItems(q url.Values) ([]history.ItemKey, *refusal.Error) {
	raw, e := single(q, "items")
	if e != nil {
		return nil, e
	}
	if raw == "" {
		return nil, refusal.Invalidf("items", "items is required: a comma-separated list of biz:item_id")
	}
	n := strings.Count(raw, ",") + 1
	if n > MaxProgressItems {
		return nil, refusal.Invalidf("items", "at most %d items, got %d", MaxProgressItems, n)
	}
	keys := make([]history.ItemKey, 0, n)
	for part := range strings.SplitSeq(raw, ",") {
		k, err := history.ParseItemKey(part)
		if err != nil || k.ItemID > maxID {
			return nil, refusal.Invalidf("items", "bad item key %q: want biz:item_id, e.g. audio:123", part)
		}
		keys = append(keys, k)
	}
	return keys, nil
}
