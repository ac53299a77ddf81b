package recommend

import (
	"context"
	"errors"
	"time"
)

// Result is the body of GET /v1/stations/{id}/playlist and of the admin
// preview.
type Result struct {
	StationID uint64 `json:"station_id"`
	// Daypart is the daypart's name; nil when the clock has none at that
	// moment (then Items is empty).
	Daypart  *string   `json:"daypart"`
	StartsAt time.Time `json:"starts_at,omitzero"`
	EndsAt   time.Time `json:"ends_at,omitzero"`
	Items    []Entry   `json:"items"`
}

// Preview is the body of GET /v1/admin/stations/{id}/preview: a Result
// and the rules that gave way while building it, and why.
type Preview struct {
	Result
	Relaxed []Relaxed `json:"relaxed"`
}

// ErrNoStation: no station has that id.
var ErrNoStation = errors.New("recommend: no such station")

// Playlist returns listener's playlist of station at at (listener 0: the
// public one), at most limit items. It reads the listener's state from
// Redis (one round trip) and nothing else: no ClickHouse, no build unless
// no list was built ahead for at. When Redis fails the public list is
// served and the error is logged and counted.
func (e *Engine) Playlist(ctx context.Context, station, listener uint64, at time.Time, limit int) (Result, error) {
	r, _, err := e.playlist(ctx, station, listener, at, limit)
	return r, err
}

// Preview is Playlist with the relaxed rules, for operators.
func (e *Engine) Preview(ctx context.Context, station, listener uint64, at time.Time, limit int) (Preview, error) {
	r, relaxed, err := e.playlist(ctx, station, listener, at, limit)
	if relaxed == nil {
		relaxed = []Relaxed{}
	}
	return Preview{Result: r, Relaxed: relaxed}, err
}

func (e *Engine) playlist(ctx context.Context, station, listener uint64, at time.Time, limit int) (Result, []Relaxed, error) {
	pl, st, ok := e.board.public(station, at)
	if !ok {
		return Result{}, nil, ErrNoStation
	}
	r := Result{StationID: station, Items: []Entry{}}
	if pl == nil {
		return r, nil, nil
	}
	name := pl.Window.Name
	r.Daypart, r.StartsAt, r.EndsAt = &name, pl.Window.Start, pl.Window.End
	ls, err := e.listenerState(ctx, listener, e.cfg.Now())
	if err != nil {
		e.log.Warn("serving the public playlist: listener state unavailable", "station", station, "listener", listener, "err", err)
	}
	items, relaxed := Personalize(pl, e.board.snap.Load(), st, ls, Seed(listener, station, pl.Window), at, limit)
	r.Items = items
	return r, relaxed, nil
}
