package api

import (
	"context"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/onair/onair/internal/jsonstr"
	"github.com/onair/onair/internal/refusal"
	"github.com/onair/onair/recommend"
)

// Radio is what the smart-radio handlers need (api.md, "Smart radio");
// *recommend.Engine implements it. Errors: a *refusal.Error is answered
// as it is (400 naming the field), recommend.ErrNoStation → 404,
// recommend.ErrUnavailable → 503.
type Radio interface {
	PutItems(ctx context.Context, items []recommend.Item) error
	PutStation(ctx context.Context, st *recommend.Station) error
	Station(id uint64) (*recommend.Station, bool)
	Stations() []*recommend.Station
	Playlist(ctx context.Context, station, listener uint64, at time.Time, limit int) (recommend.Result, error)
	Preview(ctx context.Context, station, listener uint64, at time.Time, limit int) (recommend.Preview, error)
}

var _ Radio = (*recommend.Engine)(nil)

// MountRadio adds api.md's "Smart radio" routes backed by r: the catalog
// and stations (admin), the station list and a listener's playlist.
func MountRadio(s *Server, r Radio) {
	h := &radioHandlers{s: s, r: r}
	s.Admin().PUT("/catalog", h.putCatalog)
	s.Admin().PUT("/stations/:id", h.putStation)
	s.Admin().GET("/stations/:id", h.getStation)
	s.Admin().GET("/stations/:id/preview", h.previewStation)
	s.V1().GET("/stations", h.listStations)
	s.V1().GET("/stations/:id/playlist", h.getPlaylist)
}

type radioHandlers struct {
	s *Server
	r Radio
}

// putCatalog is PUT /v1/admin/catalog {"items": [...]}: 200 {"accepted": n}
// once the changes are in the catalog stream.
func (h *radioHandlers) putCatalog(c *gin.Context) {
	var body struct {
		Items []recommend.Item `json:"items"`
	}
	if e := decodeJSON(c, &body, ingestBody); e != nil {
		WriteError(c, e)
		return
	}
	if err := h.r.PutItems(c.Request.Context(), body.Items); err != nil {
		WriteError(c, h.fail(c, err))
		return
	}
	c.JSON(200, gin.H{"accepted": len(body.Items)})
}

// putStation is PUT /v1/admin/stations/{id}: 200 with the station as stored.
func (h *radioHandlers) putStation(c *gin.Context) {
	id, e := pathID(c, "id")
	if e != nil {
		WriteError(c, e)
		return
	}
	var st recommend.Station
	if e := decodeJSON(c, &st, ingestBody); e != nil {
		WriteError(c, e)
		return
	}
	st.ID = id
	if err := h.r.PutStation(c.Request.Context(), &st); err != nil {
		WriteError(c, h.fail(c, err))
		return
	}
	c.JSON(200, &st)
}

// getStation is GET /v1/admin/stations/{id}.
func (h *radioHandlers) getStation(c *gin.Context) {
	id, e := pathID(c, "id")
	if e != nil {
		WriteError(c, e)
		return
	}
	st, ok := h.r.Station(id)
	if !ok {
		WriteError(c, refusal.New(refusal.NotFound, "", "no station %d", id))
		return
	}
	c.JSON(200, st)
}

// listStations is GET /v1/stations: {"stations": [{"id", "name", "timezone"}]}.
func (h *radioHandlers) listStations(c *gin.Context) {
	type summary struct {
		ID       uint64 `json:"id"`
		Name     string `json:"name"`
		Timezone string `json:"timezone"`
	}
	out := []summary{}
	for _, st := range h.r.Stations() {
		out = append(out, summary{st.ID, st.Name, st.Timezone})
	}
	c.JSON(200, gin.H{"stations": out})
}

// getPlaylist is GET /v1/stations/{id}/playlist?limit=20: the caller's
// playlist for the daypart in force now.
func (h *radioHandlers) getPlaylist(c *gin.Context) {
	cl, _ := ClaimsFrom(c)
	id, e := pathID(c, "id")
	if e == nil {
		var limit int
		if limit, e = queryInt(c.Request.URL.Query(), "limit", DefaultPageLimit, 1, MaxPageLimit); e == nil {
			r, err := h.r.Playlist(c.Request.Context(), id, cl.UserID, h.s.now(), limit)
			if err == nil {
				writeJSON(c, 200, appendPlaylistJSON(make([]byte, 0, 128+80*len(r.Items)), &r))
				return
			}
			e = h.fail(c, err)
		}
	}
	WriteError(c, e)
}

// previewStation is GET /v1/admin/stations/{id}/preview?at=&listener=&limit=.
func (h *radioHandlers) previewStation(c *gin.Context) {
	id, e := pathID(c, "id")
	if e != nil {
		WriteError(c, e)
		return
	}
	limit, e := queryInt(c.Request.URL.Query(), "limit", DefaultPageLimit, 1, MaxPageLimit)
	if e != nil {
		WriteError(c, e)
		return
	}
	at := h.s.now()
	if v := c.Query("at"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			WriteError(c, refusal.Invalidf("at", "want an RFC 3339 time, e.g. 2026-11-27T08:00:00+08:00, got %q", v))
			return
		}
		at = t
	}
	var listener uint64
	if v := c.Query("listener"); v != "" {
		u, err := strconv.ParseUint(v, 10, 64)
		if err != nil || u == 0 || u > math.MaxInt64 {
			WriteError(c, refusal.Invalidf("listener", "want a positive user id, got %q", v))
			return
		}
		listener = u
	}
	r, err := h.r.Preview(c.Request.Context(), id, listener, at, limit)
	if err != nil {
		WriteError(c, h.fail(c, err))
		return
	}
	c.JSON(200, &r)
}

func (h *radioHandlers) fail(c *gin.Context, err error) *refusal.Error {
	if e, ok := refusal.As(err); ok {
		return e
	}
	switch {
	case errors.Is(err, recommend.ErrNoStation):
		return refusal.New(refusal.NotFound, "", "no station %s", c.Param("id"))
	case errors.Is(err, recommend.ErrUnavailable):
		return refusal.UnavailableFor("catalog_unavailable", "the catalog stream did not take the change; retry")
	}
	h.s.log.Error("radio: request failed", "route", c.FullPath(), "err", err)
	return refusal.InternalFor("radio_failed")
}

// appendPlaylistJSON encodes r as encoding/json would (same fields and
// order), without reflection: the playlist is the radio's hot read.
func appendPlaylistJSON(b []byte, r *recommend.Result) []byte {
	b = append(b, `{"station_id":`...)
	b = strconv.AppendUint(b, r.StationID, 10)
	b = append(b, `,"daypart":`...)
	if r.Daypart == nil {
		b = append(b, "null"...)
	} else {
		b = jsonstr.Append(b, *r.Daypart)
		b = append(b, `,"starts_at":"`...)
		b = r.StartsAt.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","ends_at":"`...)
		b = r.EndsAt.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	b = append(b, `,"items":[`...)
	for i, e := range r.Items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"item_id":`...)
		b = strconv.AppendUint(b, e.ItemID, 10)
		b = append(b, `,"slot":`...)
		b = jsonstr.Append(b, e.Slot)
		b = append(b, `,"reason":`...)
		b = jsonstr.Append(b, e.Reason)
		b = append(b, `,"at":`...)
		b = strconv.AppendInt(b, e.At, 10)
		b = append(b, '}')
	}
	return append(b, "]}\n"...)
}
