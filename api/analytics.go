package api

import (
	"context"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/onair/onair/analytics"
	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/refusal"
)

// AnalyticsPagePath is where the analytics page is served.
const AnalyticsPagePath = "/analytics/"

// analyticsTimeout bounds one analytics endpoint's ClickHouse work.
const analyticsTimeout = 30 * time.Second

// MountAnalytics adds the analytics endpoints backed by st (GET
// /v1/admin/analytics/{dau,listening,retention,stations,top,affinity}) and
// serves the page at AnalyticsPagePath. The page is static and public; its
// data needs an admin token, which it asks for once.
func MountAnalytics(srv *Server, st *analytics.Store) {
	s := &analyticsHandlers{st: st}
	g := srv.Admin().Group("/analytics")
	g.GET("/dau", s.handle(func(ctx context.Context, c *gin.Context) (any, error) {
		days, e := intParam(c, "days", 30, 1, analytics.MaxDays)
		if e != nil {
			return nil, e
		}
		return s.st.DAU(ctx, days)
	}))
	g.GET("/listening", s.handle(func(ctx context.Context, c *gin.Context) (any, error) {
		days, e := intParam(c, "days", 30, 1, analytics.MaxDays)
		if e != nil {
			return nil, e
		}
		return s.st.Listening(ctx, days)
	}))
	g.GET("/retention", s.handle(func(ctx context.Context, c *gin.Context) (any, error) {
		days, e := intParam(c, "days", 30, 1, analytics.MaxDays)
		if e != nil {
			return nil, e
		}
		return wrapItems(s.st.Retention(ctx, days))
	}))
	g.GET("/stations", s.handle(func(ctx context.Context, c *gin.Context) (any, error) {
		days, e := intParam(c, "days", 7, 1, analytics.MaxDays)
		if e != nil {
			return nil, e
		}
		return wrapItems(s.st.Stations(ctx, days))
	}))
	g.GET("/top", s.handle(s.top))
	g.GET("/affinity", s.handle(s.affinity))

	sub := analytics.Page()
	files := http.StripPrefix(AnalyticsPagePath, http.FileServer(http.FS(sub)))
	srv.Router().GET(AnalyticsPagePath+"*file", PageHeaders, func(c *gin.Context) {
		// a missing file gets the API's JSON not_found, not FileServer's text
		if name := strings.TrimPrefix(c.Param("file"), "/"); name != "" {
			if _, err := fs.Stat(sub, name); err != nil {
				WriteError(c, refusal.New(refusal.NotFound, "", "no file %s in the analytics page", name))
				return
			}
		}
		files.ServeHTTP(c.Writer, c.Request)
	})
	srv.Router().GET("/analytics", func(c *gin.Context) { c.Redirect(http.StatusMovedPermanently, AnalyticsPagePath) })
}

func (s *analyticsHandlers) top(ctx context.Context, c *gin.Context) (any, error) {
	biz, ok := ingest.ParseBiz(c.DefaultQuery("biz", "audio"))
	if !ok {
		return nil, refusal.Invalidf("biz", "must be one of audio video live article comic radio")
	}
	w := analytics.Window(c.DefaultQuery("window", string(analytics.WindowHour)))
	if w != analytics.WindowHour && w != analytics.WindowDay && w != analytics.WindowLast7Days {
		return nil, refusal.Invalidf("window", "must be hour, day or week")
	}
	limit, e := intParam(c, "limit", 10, 1, analytics.MaxLimit)
	if e != nil {
		return nil, e
	}
	return wrapItems(s.st.Popularity(ctx, biz, w, limit))
}

func (s *analyticsHandlers) affinity(ctx context.Context, c *gin.Context) (any, error) {
	// ids are 1..2^63-1 across the API (docs/api.md)
	user, err := strconv.ParseUint(c.Query("user"), 10, 63)
	if err != nil || user == 0 {
		return nil, refusal.Invalidf("user", "must be a positive user id")
	}
	days, e := intParam(c, "days", 30, 1, analytics.MaxDays)
	if e != nil {
		return nil, e
	}
	limit, e := intParam(c, "limit", 20, 1, analytics.MaxLimit)
	if e != nil {
		return nil, e
	}
	return wrapItems(s.st.UserEngagement(ctx, user, days, limit))
}

// analyticsHandlers serves the analytics endpoints from a store.
type analyticsHandlers struct{ st *analytics.Store }

// wrapItems gives list answers the API's {"items": [...]} shape.
func wrapItems[T any](items []T, err error) (any, error) {
	if items == nil {
		items = []T{}
	}
	return map[string][]T{"items": items}, err
}

// handle adapts a query to gin: refusals (argument errors, 400 naming the
// field) are answered as they are, anything else is ClickHouse failing
// (503; logged and counted by the query).
func (s *analyticsHandlers) handle(f func(context.Context, *gin.Context) (any, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), analyticsTimeout)
		defer cancel()
		v, err := f(ctx, c)
		if err != nil {
			e, ok := refusal.As(err)
			if !ok {
				e = refusal.UnavailableFor("clickhouse", "analytics query failed; retry later")
			}
			WriteError(c, e)
			return
		}
		c.JSON(http.StatusOK, v)
	}
}

// intParam is queryInt, except that a parameter given empty ("?days=")
// is refused rather than read as absent: the analytics routes have always
// answered it with a 400 naming it, and their clients may rely on that.
func intParam(c *gin.Context, name string, def, lo, hi int) (int, error) {
	if v, ok := c.GetQuery(name); ok && v == "" {
		return 0, refusal.Invalidf(name, "%s must be an integer in %d..%d, got \"\"", name, lo, hi)
	}
	n, e := queryInt(c.Request.URL.Query(), name, def, lo, hi)
	if e != nil {
		return 0, e
	}
	return n, nil
}
