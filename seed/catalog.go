package seed

import (
	"fmt"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/recommend"
)

// Item is one item of the demo catalog, in the shape of
// PUT /v1/admin/catalog. Items are a pure function of their id, so the
// generator, the catalog upload and tests agree without sharing state.
type Item struct {
	ItemID     uint64     `json:"item_id"`
	Biz        ingest.Biz `json:"-"`
	BizName    string     `json:"biz"`
	AlbumID    uint64     `json:"album_id"`
	ArtistID   uint64     `json:"artist_id"`
	Title      string     `json:"title"`
	Category   string     `json:"category"`
	Tags       []string   `json:"tags"`
	Region     string     `json:"region"`
	Score      float64    `json:"score"`
	OnlineAt   int64      `json:"online_at"`
	DurationMs uint64     `json:"duration_ms"`
	Status     string     `json:"status"`
}

// categories per business line; tags are shared.
var (
	categories = map[ingest.Biz][]string{
		ingest.BizAudio:   {"music", "podcast", "audiobook", "kids"},
		ingest.BizVideo:   {"drama", "sports", "news", "comedy"},
		ingest.BizArticle: {"news", "tech", "culture"},
		ingest.BizComic:   {"action", "romance"},
		ingest.BizRadio:   {"news", "music", "talk"},
	}
	tagPool = [...]string{"tech", "pop", "jazz", "classic", "history", "finance", "health", "travel", "food", "science", "rock", "family"}
	regions = [...]string{"bj", "sh", "gz", "cd"}
)

// mix is a 64-bit hash (splitmix64's finaliser) for deterministic item
// attributes.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// ItemOf returns demo item id.
func ItemOf(id uint64) Item {
	h := mix(id)
	var biz ingest.Biz
	var dur uint64
	switch h % 20 {
	case 0, 1, 2, 3, 4, 5, 6, 7:
		biz, dur = ingest.BizAudio, 120_000+h>>8%480*1000
	case 8, 9, 10, 11, 12:
		biz, dur = ingest.BizVideo, 60_000+h>>8%1740*1000
	case 13, 14:
		biz, dur = ingest.BizArticle, 60_000+h>>8%540*1000
	case 15, 16:
		biz, dur = ingest.BizComic, 30_000+h>>8%270*1000
	default:
		biz, dur = ingest.BizRadio, 1_800_000+h>>8%1800*1000
	}
	cats := categories[biz]
	t1 := h >> 20 % uint64(len(tagPool))
	t2 := (t1 + 1 + h>>28%uint64(len(tagPool)-1)) % uint64(len(tagPool))
	tags := []string{tagPool[t1], tagPool[t2]}
	return Item{
		ItemID: id, Biz: biz, BizName: biz.String(),
		AlbumID: 1 + id/10, ArtistID: 1 + h>>36%200,
		Title:    fmt.Sprintf("%s #%d", biz, id),
		Category: cats[h>>16%uint64(len(cats))], Tags: tags,
		Region: regions[h>>40%uint64(len(regions))], Score: float64(h>>44%100) / 10,
		OnlineAt: 1_735_689_600_000, DurationMs: dur, Status: "online",
	}
}

var stationThemes = [...]struct{ name, category, tag string }{
	{"News FM", "news", "finance"}, {"Music Hits", "music", "pop"}, {"Talk Night", "talk", "history"}, {"Jazz Lounge", "music", "jazz"},
}

// StationOf returns demo station id (1-based), in the shape
// PUT /v1/admin/stations/{id} takes. Its four dayparts cover every hour of
// every day, so its playlist is never empty (cmd/onair TestSeedDemoRadio).
func StationOf(id uint64) recommend.Station {
	th := stationThemes[(id-1)%uint64(len(stationThemes))]
	week := []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
	part := func(name, start, end string) recommend.Daypart {
		return recommend.Daypart{Name: name, Days: week, Start: start, End: end, Rounds: []recommend.Round{{Slots: []recommend.Slot{
			{Type: recommend.SlotProgram, Filter: recommend.Filter{Categories: []string{th.category}}, Count: 2},
			{Type: recommend.SlotPersonal, Filter: recommend.Filter{Tags: []string{th.tag}}, Count: 2},
		}}}}
	}
	return recommend.Station{ID: id, Name: fmt.Sprintf("%s %d", th.name, id), Timezone: "Asia/Shanghai", Holidays: []string{},
		Dayparts: []recommend.Daypart{part("morning", "06:00", "12:00"), part("afternoon", "12:00", "18:00"), part("evening", "18:00", "24:00"), part("night", "00:00", "06:00")}}
}
