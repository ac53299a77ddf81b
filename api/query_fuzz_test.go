package api

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/onair/onair/history"
	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/refusal"
)

// The rules of docs/api.md for the read endpoints' query parameters,
// written out independently of the parsers they check.
var (
	bizNames     = map[string]ingest.Biz{"audio": 1, "video": 2, "live": 3, "article": 4, "comic": 5, "radio": 6}
	digits       = regexp.MustCompile(`^[0-9]+$`)
	itemKeyShape = regexp.MustCompile(`^(audio|video|live|article|comic|radio):([0-9]+)$`)
)

// decimalIn reports whether s (digits only) is an integer in lo..hi.
func decimalIn(s string, lo, hi uint64) bool {
	if !digits.MatchString(s) {
		return false
	}
	s = strings.TrimLeft(s, "0")
	if len(s) > 19 {
		return false
	}
	n, err := strconv.ParseUint("0"+s, 10, 64)
	return err == nil && n >= lo && n <= hi
}

// checkStrict runs raw through strictQuery: it must refuse exactly the
// query strings url.ParseQuery cannot parse, naming "query".
func checkStrict(t *testing.T, raw string) (url.Values, bool) {
	q, perr := url.ParseQuery(raw)
	rec := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(rec)
	c.Request = &http.Request{Method: "GET", URL: &url.URL{Path: "/", RawQuery: raw}, Header: http.Header{}}
	strictQuery(c)
	refused := c.IsAborted()
	if refused != (perr != nil) {
		t.Fatalf("query %q: refused %v, but ParseQuery error %v", raw, refused, perr)
	}
	if refused {
		if e := errorFrom(c); e == nil || e.Status() != 400 || e.Code() != refusal.CodeInvalidArgument || e.Field != "query" {
			t.Fatalf("query %q refused with %+v, want 400 invalid_argument field query", raw, e)
		}
	}
	return q, !refused
}

func wantField(t *testing.T, raw string, e *refusal.Error, field string) {
	t.Helper()
	if field == "" {
		if e != nil {
			t.Fatalf("query %q: %v, want it accepted", raw, e)
		}
		return
	}
	if e == nil || e.Status() != 400 || e.Code() != refusal.CodeInvalidArgument || e.Field != field {
		t.Fatalf("query %q: %+v, want 400 invalid_argument field %q", raw, e, field)
	}
}

// FuzzPageQuery: the query of GET /v1/history and /v1/continue. biz is
// absent/empty or one of six names; limit absent/empty (20) or an integer
// 1..100; cursor passed on as given; each at most once; anything else is
// ignored. The first broken parameter (in that order) is named.
func FuzzPageQuery(f *testing.F) {
	for _, s := range []string{"", "limit=20", "biz=audio&limit=100&cursor=abc", "cursor=%%%garbage",
		"limit=0", "limit=101", "limit=007", "limit=+5", "limit=5&limit=5", "biz=Audio", "a=1;b=2", "biz=&limit=&x=%41"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, ok := checkStrict(t, raw)
		if !ok {
			return
		}
		p, e := parsePageQuery(q)
		field := ""
		bizV, limitV := q.Get("biz"), q.Get("limit")
		switch {
		case len(q["biz"]) > 1:
			field = "biz"
		case bizV != "" && bizNames[bizV] == 0:
			field = "biz"
		case len(q["limit"]) > 1:
			field = "limit"
		case limitV != "" && !decimalIn(limitV, 1, MaxPageLimit):
			field = "limit"
		case len(q["cursor"]) > 1:
			field = "cursor"
		}
		wantField(t, raw, e, field)
		if e != nil {
			return
		}
		wantLimit := DefaultPageLimit
		if limitV != "" {
			wantLimit, _ = strconv.Atoi(strings.TrimLeft(limitV, "0"))
		}
		if p.biz != bizNames[bizV] || p.limit != wantLimit || p.cursor != q.Get("cursor") {
			t.Fatalf("query %q parsed to %+v, want biz %d limit %d cursor %q", raw, p, bizNames[bizV], wantLimit, q.Get("cursor"))
		}
	})
}

// FuzzProgressItems: the query of GET /v1/progress. items is required,
// given once, 1..100 comma-separated biz:item_id keys with ids in
// 1..2⁶³−1; the keys come back in order.
func FuzzProgressItems(f *testing.F) {
	for _, s := range []string{"items=audio:123,video:9", "items=", "items=audio:0", "items=audio:1,", "items=audio:1&items=audio:2",
		"items=audio:9223372036854775807", "items=audio:9223372036854775808", "items=podcast:1", "items=audio%3A5", "items=%%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, ok := checkStrict(t, raw)
		if !ok {
			return
		}
		keys, e := parseItems(q)
		v := q.Get("items")
		parts := strings.Split(v, ",")
		field := ""
		switch {
		case len(q["items"]) > 1, v == "", len(parts) > MaxProgressItems:
			field = "items"
		default:
			for _, part := range parts {
				m := itemKeyShape.FindStringSubmatch(part)
				if m == nil || !decimalIn(m[2], 1, 1<<63-1) {
					field = "items"
				}
			}
		}
		wantField(t, raw, e, field)
		if e != nil {
			return
		}
		if len(keys) != len(parts) {
			t.Fatalf("query %q: %d keys, want %d", raw, len(keys), len(parts))
		}
		for i, part := range parts {
			m := itemKeyShape.FindStringSubmatch(part)
			n, _ := strconv.ParseUint(strings.TrimLeft(m[2], "0"), 10, 64)
			if keys[i] != (history.ItemKey{Biz: bizNames[m[1]], ItemID: n}) {
				t.Fatalf("query %q: key %d is %+v, want %s", raw, i, keys[i], part)
			}
		}
	})
}
