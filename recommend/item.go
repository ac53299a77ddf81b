// Package recommend is onair's smart radio: the catalog and the station
// schedules as a change stream on the Kafka topic "catalog", an in-memory
// catalog on every radio node that follows it, public playlists built ahead
// of each daypart and switched atomically, and a personal playlist made on
// request from the public one and the listener's state in Redis.
//
// Building a playlist is a pure function (Build, Personalize): catalog
// snapshot, station, window, listener state and seed in, playlist with
// reasons out. The I/O (Kafka, Redis, ClickHouse) lives in Engine and its
// helpers around it. DESIGN.md ("recommend/") maps the files.
package recommend

import (
	"fmt"
	"math"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/refusal"
)

// Status is whether an item may be played.
type Status string

// Item statuses (the ClickHouse enum of onair.catalog).
const (
	StatusOnline  Status = "online"
	StatusOffline Status = "offline"
)

// Item is one catalog entry, as PUT /v1/admin/catalog takes it and the
// "catalog" topic carries it. Times are Unix milliseconds; 0 = unset.
type Item struct {
	ItemID     uint64   `json:"item_id"`
	Biz        string   `json:"biz"`
	AlbumID    uint64   `json:"album_id"`
	ArtistID   uint64   `json:"artist_id,omitempty"`
	Title      string   `json:"title"`
	Category   string   `json:"category"`
	Tags       []string `json:"tags"`
	Region     string   `json:"region"`
	Score      float64  `json:"score"`
	OnlineAt   int64    `json:"online_at"`
	DurationMs int64    `json:"duration_ms"`
	Status     Status   `json:"status"`
	// StartsAt and EndsAt are a promo's flight dates: the item is played
	// only at estimated play times in [StartsAt, EndsAt). 0 = unbounded.
	StartsAt int64 `json:"starts_at,omitempty"`
	EndsAt   int64 `json:"ends_at,omitempty"`

	// affKeys are the item's affinity keys, "c:<category>" then
	// "t:<tag>"..., made once by the first snapshot that indexes the item
	// (before any reader can see it) so the request path does not build
	// strings.
	affKeys []string
}

// Limits of PUT /v1/admin/catalog.
const (
	MaxItemsPerRequest = 1000
	MaxTags            = 16
	MaxTagBytes        = 32
	MaxTextBytes       = 256 // title, category, region
)

// ValidateItems checks a PUT /v1/admin/catalog body; the first problem is
// returned with its field path.
func ValidateItems(items []Item) *refusal.Error {
	if len(items) == 0 {
		return refusal.Invalidf("items", "at least one item is required")
	}
	if len(items) > MaxItemsPerRequest {
		return refusal.Invalidf("items", "at most %d items per request, got %d", MaxItemsPerRequest, len(items))
	}
	for i := range items {
		if err := validateItem(&items[i], fmt.Sprintf("items[%d].", i)); err != nil {
			return err
		}
	}
	return nil
}

func validateItem(it *Item, p string) *refusal.Error {
	switch {
	case it.ItemID == 0 || it.ItemID > math.MaxInt64:
		return refusal.Invalidf(p+"item_id", "must be an integer in 1..2^63-1")
	case it.AlbumID == 0 || it.AlbumID > math.MaxInt64:
		return refusal.Invalidf(p+"album_id", "must be an integer in 1..2^63-1")
	case it.ArtistID > math.MaxInt64:
		return refusal.Invalidf(p+"artist_id", "must be an integer in 0..2^63-1")
	case it.Status != StatusOnline && it.Status != StatusOffline:
		return refusal.Invalidf(p+"status", "must be online or offline, got %q", it.Status)
	case math.IsNaN(it.Score) || math.IsInf(it.Score, 0):
		return refusal.Invalidf(p+"score", "must be a finite number")
	case it.OnlineAt < 0:
		return refusal.Invalidf(p+"online_at", "must be Unix milliseconds >= 0")
	case it.DurationMs < 0:
		return refusal.Invalidf(p+"duration_ms", "must be >= 0")
	case it.StartsAt < 0 || it.EndsAt < 0:
		return refusal.Invalidf(p+"starts_at", "flight dates must be Unix milliseconds >= 0")
	case it.EndsAt != 0 && it.EndsAt <= it.StartsAt:
		return refusal.Invalidf(p+"ends_at", "must be after starts_at")
	case len(it.Tags) > MaxTags:
		return refusal.Invalidf(p+"tags", "at most %d tags, got %d", MaxTags, len(it.Tags))
	case len(it.Title) > MaxTextBytes:
		return refusal.Invalidf(p+"title", "at most %d bytes", MaxTextBytes)
	case len(it.Category) > MaxTextBytes:
		return refusal.Invalidf(p+"category", "at most %d bytes", MaxTextBytes)
	case len(it.Region) > MaxTextBytes:
		return refusal.Invalidf(p+"region", "at most %d bytes", MaxTextBytes)
	}
	if _, ok := ingest.ParseBiz(it.Biz); !ok {
		return refusal.Invalidf(p+"biz", "must be one of audio video live article comic radio, got %q", it.Biz)
	}
	for j, tag := range it.Tags {
		if tag == "" || len(tag) > MaxTagBytes {
			return refusal.Invalidf(fmt.Sprintf("%stags[%d]", p, j), "a tag is 1..%d bytes", MaxTagBytes)
		}
	}
	return nil
}

// playable reports whether it may be played at t (Unix ms): online, past
// its online_at, and inside its flight dates.
func (it *Item) playable(t int64) bool {
	return it.Status == StatusOnline && it.OnlineAt <= t &&
		(it.StartsAt == 0 || it.StartsAt <= t) && (it.EndsAt == 0 || t < it.EndsAt)
}

// hasTag reports whether the item carries tag.
func (it *Item) hasTag(tag string) bool {
	for _, t := range it.Tags {
		if t == tag {
			return true
		}
	}
	return false
}
