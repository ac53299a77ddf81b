package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/onair/onair/history"
	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/jsonstr"
	"github.com/onair/onair/internal/refusal"
)

// History is what the handlers need of the history store: the daily Touch
// of ingest, and api.md's "History" section. *history.Store implements it.
// A biz of 0 (ingest.BizNone) means every business line where allowed.
// A *refusal.Error is the caller's mistake, answered as it is (400 naming
// its field); any other error means the store is unavailable (503).
type History interface {
	Touch(ctx context.Context, userID uint64, now time.Time) (firstToday, paused bool, err error)
	PauseFlag(ctx context.Context, userID uint64) (bool, error)
	History(ctx context.Context, userID uint64, biz ingest.Biz, limit int, cursor string) (history.Page, error)
	Progress(ctx context.Context, userID uint64, keys []history.ItemKey) (map[history.ItemKey]history.Entry, error)
	Delete(ctx context.Context, userID uint64, biz ingest.Biz, itemID uint64, now time.Time) error
	Clear(ctx context.Context, userID uint64, biz ingest.Biz, now time.Time) error
	Paused(ctx context.Context, userID uint64) (bool, error)
	SetPaused(ctx context.Context, userID uint64, paused bool, now time.Time) error
	Continue(ctx context.Context, userID uint64, biz ingest.Biz, limit int) ([]history.Entry, error)
	Hide(ctx context.Context, userID uint64, biz ingest.Biz, itemID uint64, now time.Time) error
}

// Limits of the History routes.
const (
	// DefaultPageLimit is the limit of GET /v1/history and /v1/continue
	// when none is given.
	DefaultPageLimit = history.DefaultLimit
	// MaxPageLimit is the largest limit accepted (docs/api.md: limit ≤ 100).
	MaxPageLimit = history.MaxLimit
	// MaxProgressItems is the most keys one GET /v1/progress may ask for.
	MaxProgressItems = 100
)

func (s *Server) mountHistory() {
	g := s.v1.Group("", historyDeadline)
	g.GET("/history", s.getHistory)
	g.DELETE("/history", s.clearHistory)
	g.GET("/history/settings", s.getSettings)
	g.PUT("/history/settings", s.putSettings)
	g.DELETE("/history/:biz/:item_id", s.deleteItem)
	g.GET("/progress", s.getProgress)
	g.GET("/continue", s.getContinue)
	g.POST("/continue/:biz/:item_id/hide", s.hideItem)
}

// getHistory is GET /v1/history?biz=&limit=&cursor=.
func (s *Server) getHistory(c *gin.Context) {
	cl, _ := ClaimsFrom(c)
	q, e := parsePageQuery(c.Request.URL.Query())
	if e == nil {
		p, err := s.cfg.History.History(c.Request.Context(), cl.UserID, q.biz, q.limit, q.cursor)
		if err == nil {
			writeJSON(c, http.StatusOK, p.Render(renderPage))
			return
		}
		e = s.historyError(c, err)
	}
	WriteError(c, e)
}

// renderPage is the body of a GET /v1/history reply.
func renderPage(p history.Page) []byte {
	b := make([]byte, 0, 64+len(p.Items)*160)
	b = append(b, `{"items":`...)
	b = appendEntries(b, p.Items)
	b = append(b, `,"next_cursor":`...)
	if p.NextCursor == "" {
		b = append(b, "null"...)
	} else {
		b = jsonstr.Append(b, p.NextCursor)
	}
	return append(b, '}', '\n')
}

// getProgress is GET /v1/progress?items=audio:123,video:9. Keys with no
// progress are left out; a key asked twice appears once.
func (s *Server) getProgress(c *gin.Context) {
	cl, _ := ClaimsFrom(c)
	keys, e := parseItems(c.Request.URL.Query())
	if e != nil {
		WriteError(c, e)
		return
	}
	m, err := s.cfg.History.Progress(c.Request.Context(), cl.UserID, keys)
	if err != nil {
		WriteError(c, s.historyError(c, err))
		return
	}
	b := make([]byte, 0, 16+len(m)*180)
	b = append(b, `{"items":{`...)
	first := true
	for i, k := range keys {
		en, ok := m[k]
		if !ok || dupKey(keys[:i], k) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = jsonstr.Append(b, k.String())
		b = append(b, ':')
		b = appendEntry(b, &en)
	}
	writeJSON(c, http.StatusOK, append(b, '}', '}', '\n'))
}

func dupKey(seen []history.ItemKey, k history.ItemKey) bool {
	for _, s := range seen {
		if s == k {
			return true
		}
	}
	return false
}

// deleteItem is DELETE /v1/history/{biz}/{item_id}.
func (s *Server) deleteItem(c *gin.Context) {
	cl, _ := ClaimsFrom(c)
	biz, id, e := pathItem(c)
	if e == nil {
		if err := s.cfg.History.Delete(c.Request.Context(), cl.UserID, biz, id, s.now()); err != nil {
			e = s.historyError(c, err)
		}
	}
	finish(c, e)
}

// clearHistory is DELETE /v1/history[?biz=]: without biz, every business
// line is cleared.
func (s *Server) clearHistory(c *gin.Context) {
	cl, _ := ClaimsFrom(c)
	biz, e := parseBiz(c.Request.URL.Query())
	if e == nil {
		if err := s.cfg.History.Clear(c.Request.Context(), cl.UserID, biz, s.now()); err != nil {
			e = s.historyError(c, err)
		}
	}
	finish(c, e)
}

// getSettings is GET /v1/history/settings.
func (s *Server) getSettings(c *gin.Context) {
	cl, _ := ClaimsFrom(c)
	p, err := s.cfg.History.Paused(c.Request.Context(), cl.UserID)
	if err != nil {
		WriteError(c, s.historyError(c, err))
		return
	}
	writeSettings(c, p)
}

// putSettings is PUT /v1/history/settings {"history_paused": bool}; it
// answers 200 with the settings now in force.
func (s *Server) putSettings(c *gin.Context) {
	cl, _ := ClaimsFrom(c)
	var in struct {
		HistoryPaused *bool `json:"history_paused"`
	}
	if e := decodeJSON(c, &in, ingestBody); e != nil {
		WriteError(c, e)
		return
	}
	if in.HistoryPaused == nil {
		WriteError(c, refusal.Invalidf("history_paused", "history_paused is required (true or false)"))
		return
	}
	if err := s.cfg.History.SetPaused(c.Request.Context(), cl.UserID, *in.HistoryPaused, s.now()); err != nil {
		WriteError(c, s.historyError(c, err))
		return
	}
	s.touched.invalidate(cl.UserID) // this node answers the new flag at once
	writeSettings(c, *in.HistoryPaused)
}

func writeSettings(c *gin.Context, paused bool) {
	if paused {
		writeJSON(c, http.StatusOK, []byte(`{"history_paused":true}`+"\n"))
	} else {
		writeJSON(c, http.StatusOK, []byte(`{"history_paused":false}`+"\n"))
	}
}

// getContinue is GET /v1/continue?biz=&limit=: {"items": [...]}.
func (s *Server) getContinue(c *gin.Context) {
	cl, _ := ClaimsFrom(c)
	q, e := parsePageQuery(c.Request.URL.Query())
	if e == nil {
		items, err := s.cfg.History.Continue(c.Request.Context(), cl.UserID, q.biz, q.limit)
		if err == nil {
			b := make([]byte, 0, 16+len(items)*160)
			b = append(b, `{"items":`...)
			b = appendEntries(b, items)
			writeJSON(c, http.StatusOK, append(b, '}', '\n'))
			return
		}
		e = s.historyError(c, err)
	}
	WriteError(c, e)
}

// hideItem is POST /v1/continue/{biz}/{item_id}/hide.
func (s *Server) hideItem(c *gin.Context) {
	cl, _ := ClaimsFrom(c)
	biz, id, e := pathItem(c)
	if e == nil {
		if err := s.cfg.History.Hide(c.Request.Context(), cl.UserID, biz, id, s.now()); err != nil {
			e = s.historyError(c, err)
		}
	}
	finish(c, e)
}

// finish answers 204, or e.
func finish(c *gin.Context, e *refusal.Error) {
	if e != nil {
		WriteError(c, e)
		return
	}
	c.Status(http.StatusNoContent)
	c.Writer.WriteHeaderNow()
}

// historyError: the store's *refusal.Error is the caller's mistake (400
// naming its field); anything else means Redis or ClickHouse failed (503,
// logged with the cause).
func (s *Server) historyError(c *gin.Context, err error) *refusal.Error {
	if e, ok := refusal.As(err); ok {
		return e
	}
	cl, _ := ClaimsFrom(c)
	// While Redis or ClickHouse is down every request fails here.
	if n, ok := s.faultLogs.history.Due(); ok {
		s.log.Warn("history store failed", "route", c.FullPath(), "user", cl.UserID, "occurrences", n, "err", err)
	}
	return refusal.UnavailableFor("history_unavailable", "history temporarily unavailable, retry")
}

func badBiz(v string) *refusal.Error {
	return refusal.Invalidf("biz", "unknown biz %q: want one of %s", v, strings.Join(ingest.BizNames(), ", "))
}

// pathItem reads the {biz} and {item_id} path parameters.
func pathItem(c *gin.Context) (ingest.Biz, uint64, *refusal.Error) {
	v := c.Param("biz")
	biz, ok := ingest.ParseBiz(v)
	if !ok {
		return 0, 0, badBiz(v)
	}
	id, e := pathID(c, "item_id")
	return biz, id, e
}

func appendEntries(b []byte, es []history.Entry) []byte {
	b = append(b, '[')
	for i := range es {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendEntry(b, &es[i])
	}
	return append(b, ']')
}

// appendEntry writes api.md's entry object: {"biz", "item_id",
// "position_ms", "duration_ms", "finished", "updated_at" (client Unix ms),
// "device"}.
func appendEntry(b []byte, e *history.Entry) []byte {
	b = append(b, `{"biz":`...)
	b = jsonstr.Append(b, e.Biz.String())
	b = append(b, `,"item_id":`...)
	b = strconv.AppendUint(b, e.ItemID, 10)
	b = append(b, `,"position_ms":`...)
	b = strconv.AppendUint(b, e.PositionMs, 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendUint(b, e.DurationMs, 10)
	b = append(b, `,"finished":`...)
	b = strconv.AppendBool(b, e.Finished)
	b = append(b, `,"updated_at":`...)
	b = strconv.AppendInt(b, e.UpdatedAt, 10)
	b = append(b, `,"device":`...)
	b = jsonstr.Append(b, e.Device)
	return append(b, '}')
}
