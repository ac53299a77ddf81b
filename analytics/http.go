package analytics

import (
	"context"
	"embed"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/onair/onair/api"
	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/refusal"
)

// web holds the analytics page and uPlot 1.6.32 (MIT, from npm; see
// web/uPlot.LICENSE), served from the binary: no CDN at run time.
//
//go:embed web
var web embed.FS

// PagePath is where the analytics page is served.
const PagePath = "/analytics/"

// queryTimeout bounds one endpoint's ClickHouse work.
const queryTimeout = 30 * time.Second

// Mount serves the JSON endpoints under admin (GET
// <admin>/analytics/{dau,listening,retention,stations,top,affinity}) and
// the page at PagePath on root. The page is static and public; its data
// needs an admin token, which it asks for once.
func (s *Store) Mount(admin *gin.RouterGroup, root *gin.Engine) {
	g := admin.Group("/analytics")
	g.GET("/dau", s.handle(func(ctx context.Context, c *gin.Context) (any, error) {
		days, e := intParam(c, "days", 30, 1, MaxDays)
		if e != nil {
			return nil, e
		}
		return s.DAU(ctx, days)
	}))
	g.GET("/listening", s.handle(func(ctx context.Context, c *gin.Context) (any, error) {
		days, e := intParam(c, "days", 30, 1, MaxDays)
		if e != nil {
			return nil, e
		}
		return s.Listening(ctx, days)
	}))
	g.GET("/retention", s.handle(func(ctx context.Context, c *gin.Context) (any, error) {
		days, e := intParam(c, "days", 30, 1, MaxDays)
		if e != nil {
			return nil, e
		}
		return wrapItems(s.Retention(ctx, days))
	}))
	g.GET("/stations", s.handle(func(ctx context.Context, c *gin.Context) (any, error) {
		days, e := intParam(c, "days", 7, 1, MaxDays)
		if e != nil {
			return nil, e
		}
		return wrapItems(s.Stations(ctx, days))
	}))
	g.GET("/top", s.handle(s.top))
	g.GET("/affinity", s.handle(s.affinity))

	sub, _ := fs.Sub(web, "web")
	files := http.StripPrefix(PagePath, http.FileServer(http.FS(sub)))
	root.GET(PagePath+"*file", func(c *gin.Context) {
		// a missing file gets the API's JSON not_found, not FileServer's text
		if name := strings.TrimPrefix(c.Param("file"), "/"); name != "" {
			if _, err := fs.Stat(sub, name); err != nil {
				api.WriteError(c, refusal.New(refusal.NotFound, "", "no file %s in the analytics page", name))
				return
			}
		}
		files.ServeHTTP(c.Writer, c.Request)
	})
	root.GET("/analytics", func(c *gin.Context) { c.Redirect(http.StatusMovedPermanently, PagePath) })
}

func (s *Store) top(ctx context.Context, c *gin.Context) (any, error) {
	biz, ok := ingest.ParseBiz(c.DefaultQuery("biz", "audio"))
	if !ok {
		return nil, refusal.Invalidf("biz", "must be one of audio video live article comic radio")
	}
	w := Window(c.DefaultQuery("window", string(WindowHour)))
	if w != WindowHour && w != WindowDay && w != WindowWeek {
		return nil, refusal.Invalidf("window", "must be hour, day or week")
	}
	limit, e := intParam(c, "limit", 10, 1, MaxLimit)
	if e != nil {
		return nil, e
	}
	return wrapItems(s.Popularity(ctx, biz, w, limit))
}

func (s *Store) affinity(ctx context.Context, c *gin.Context) (any, error) {
	// ids are 1..2^63-1 across the API (docs/api.md)
	user, err := strconv.ParseUint(c.Query("user"), 10, 63)
	if err != nil || user == 0 {
		return nil, refusal.Invalidf("user", "must be a positive user id")
	}
	days, e := intParam(c, "days", 30, 1, MaxDays)
	if e != nil {
		return nil, e
	}
	limit, e := intParam(c, "limit", 20, 1, MaxLimit)
	if e != nil {
		return nil, e
	}
	return wrapItems(s.UserAffinity(ctx, user, days, limit))
}

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
func (s *Store) handle(f func(context.Context, *gin.Context) (any, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), queryTimeout)
		defer cancel()
		v, err := f(ctx, c)
		if err != nil {
			e, ok := refusal.As(err)
			if !ok {
				e = refusal.UnavailableFor("clickhouse", "analytics query failed; retry later")
			}
			api.WriteError(c, e)
			return
		}
		c.JSON(http.StatusOK, v)
	}
}

// intParam is api.QueryInt, except that a parameter given empty ("?days=")
// is refused rather than read as absent: the analytics routes have always
// answered it with a 400 naming it, and their clients may rely on that.
func intParam(c *gin.Context, name string, def, lo, hi int) (int, error) {
	if v, ok := c.GetQuery(name); ok && v == "" {
		return 0, refusal.Invalidf(name, "%s must be an integer in %d..%d, got \"\"", name, lo, hi)
	}
	n, e := api.QueryInt(c, name, def, lo, hi)
	if e != nil {
		return 0, e
	}
	return n, nil
}
