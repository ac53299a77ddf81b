package recommend

import "fmt"

// DemoCatalog returns the radio's demo catalog (the radio tests and
// `onair loadtest run --scenario radio` load it; `onair seed` loads its own,
// larger catalog, the one its generated events refer to): 240 items over
// news, music, stories, talk, kids, promo and live, with albums, artists,
// tags and two regions. Deterministic.
func DemoCatalog() []Item {
	type cat struct {
		name  string
		biz   string
		n     int
		tags  []string
		durMs int64
	}
	cats := []cat{
		{"news", "audio", 40, []string{"world", "tech", "finance", "local"}, 300_000},
		{"music", "audio", 80, []string{"jazz", "pop", "classical", "rock", "folk"}, 240_000},
		{"stories", "audio", 40, []string{"mystery", "history", "scifi"}, 900_000},
		{"talk", "audio", 30, []string{"tech", "health", "culture"}, 1_200_000},
		{"kids", "audio", 20, []string{"bedtime", "songs"}, 300_000},
		{"promo", "audio", 15, []string{"ad"}, 30_000},
		{"live", "live", 15, []string{"sports", "concert"}, 1_800_000},
	}
	const base = 1_763_000_000_000 // 2025-11-13, before any demo "now"
	var items []Item
	id := uint64(1)
	for ci, c := range cats {
		for i := 0; i < c.n; i++ {
			it := Item{
				ItemID: id, Biz: c.biz, AlbumID: uint64(ci*100 + i/4 + 1), ArtistID: uint64(ci*100 + i%7 + 1),
				Title:    fmt.Sprintf("%s #%d", c.name, i+1),
				Category: c.name, Tags: []string{c.tags[i%len(c.tags)], c.tags[(i/2)%len(c.tags)]},
				Region: []string{"bj", "sh"}[i%2], Score: float64((int(id)*37)%100) / 10,
				OnlineAt: base + int64(i)*3_600_000, DurationMs: c.durMs + int64(i%5)*15_000, Status: StatusOnline,
			}
			if it.Tags[0] == it.Tags[1] {
				it.Tags = it.Tags[:1]
			}
			items = append(items, it)
			id++
		}
	}
	return items
}

// DemoStations returns the two demo stations. Both cover every minute of
// every day of the week, and holidays, so a playlist is never empty:
// station 1 (Asia/Shanghai) has a morning, daytime, evening and night
// clock plus a holiday clock; station 2 (Europe/Berlin) splits weekdays
// from weekends.
func DemoStations() []Station {
	all := []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
	prog := func(cats []string, tags []string, n int) Slot {
		return Slot{Type: SlotProgram, Filter: Filter{Categories: cats, Tags: tags}, Count: n}
	}
	promo := Slot{Type: SlotPromo, Filter: Filter{Categories: []string{"promo"}}, Count: 1, MaxPerHour: 2}
	personal := func(cats []string, n int) Slot {
		return Slot{Type: SlotPersonal, Filter: Filter{Categories: cats}, Count: n}
	}
	live := Slot{Type: SlotLive, Filter: Filter{Categories: []string{"live"}}, Count: 1}
	return []Station{
		{
			ID: 1, Name: "onair One", Timezone: "Asia/Shanghai", Holidays: []string{"2026-01-01", "2026-10-01", "2027-01-01"},
			Dayparts: []Daypart{
				{Name: "morning", Days: all, Start: "06:00", End: "10:00", Rounds: []Round{{Slots: []Slot{promo, prog([]string{"news"}, nil, 2), prog([]string{"music"}, nil, 2), personal([]string{"music", "talk"}, 1)}}}},
				{Name: "daytime", Days: all, Start: "10:00", End: "18:00", Rounds: []Round{{Slots: []Slot{prog([]string{"music"}, nil, 3), personal([]string{"music", "talk", "stories"}, 2), promo}}}},
				{Name: "evening", Days: all, Start: "18:00", End: "22:00", Rounds: []Round{{Slots: []Slot{prog([]string{"stories"}, nil, 1), live, personal([]string{"stories", "music"}, 2), promo}}}},
				{Name: "night", Days: append(all, "holiday"), Start: "22:00", End: "06:00", Rounds: []Round{{Slots: []Slot{prog([]string{"music"}, []string{"jazz", "classical"}, 3), personal([]string{"music", "stories"}, 1)}}}},
				{Name: "holiday", Days: []string{"holiday"}, Start: "06:00", End: "22:00", Rounds: []Round{{Slots: []Slot{prog([]string{"kids", "music"}, nil, 3), personal(nil, 2), promo}}}},
			},
		},
		{
			ID: 2, Name: "onair Talk", Timezone: "Europe/Berlin", Separation: &Separation{Album: 1, Artist: 2, Window: 8},
			Dayparts: []Daypart{
				{Name: "weekday", Days: []string{"mon", "tue", "wed", "thu", "fri", "holiday"}, Start: "00:00", End: "24:00", Rounds: []Round{
					{Slots: []Slot{prog([]string{"news"}, nil, 1), prog([]string{"talk"}, nil, 2), promo}},
					{Slots: []Slot{personal([]string{"talk", "news"}, 2)}}}},
				{Name: "weekend", Days: []string{"sat", "sun"}, Start: "00:00", End: "24:00", Rounds: []Round{{Slots: []Slot{prog([]string{"stories", "talk"}, nil, 2), personal(nil, 2)}}}},
			},
		},
	}
}
