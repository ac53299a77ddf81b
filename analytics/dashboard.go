package analytics

import (
	"context"
	"fmt"
	"time"

	"github.com/onair/onair/internal/refusal"
)

// Series is a per-day chart: Days are dates (YYYY-MM-DD, the ClickHouse
// server's zone), oldest first, and each series has one value per day (0
// where a day has no row).
type Series struct {
	Days   []string             `json:"days"`
	Series map[string][]float64 `json:"series"`
}

// MaxDays bounds the days argument of the dashboard queries.
const MaxDays = 366

func checkDays(days int) error {
	if days < 1 || days > MaxDays {
		return refusal.Invalidf("days", "days %d not in 1..%d", days, MaxDays)
	}
	return nil
}

// DAU returns daily active users per biz over the last days days ("" is
// live rooms: gift and danmaku senders; "all" counts each user once), from
// dau_daily.
func (s *Store) DAU(ctx context.Context, days int) (Series, error) {
	if err := checkDays(days); err != nil {
		return Series{}, err
	}
	q := "SELECT day, b, u FROM (SELECT day, if(biz = '', 'live rooms', toString(biz)) AS b, toFloat64(uniqMerge(users)) AS u FROM " + s.db +
		".dau_daily WHERE day > today() - ? GROUP BY day, b UNION ALL SELECT day, 'all' AS b, toFloat64(uniqMerge(users)) AS u FROM " + s.db +
		".dau_daily WHERE day > today() - ? GROUP BY day) ORDER BY day, b"
	return s.series(ctx, "dau", days, q, days, days)
}

// Listening returns hours listened per day and biz (play events'
// listened_ms) over the last days days, from item_plays_daily.
func (s *Store) Listening(ctx context.Context, days int) (Series, error) {
	if err := checkDays(days); err != nil {
		return Series{}, err
	}
	q := "SELECT day, toString(biz) AS b, sum(listened_ms) / 3600000 FROM " + s.db +
		".item_plays_daily WHERE day > today() - ? GROUP BY day, b ORDER BY day, b"
	return s.series(ctx, "listening", days, q, days)
}

// series runs q, which returns (day, series name, value) rows, and lays
// them out over the last days days.
func (s *Store) series(ctx context.Context, name string, days int, q string, args ...any) (Series, error) {
	out := Series{Series: map[string][]float64{}}
	today := time.Time{}
	if err := s.ch.QueryRow(ctx, "SELECT today()").Scan(&today); err != nil {
		s.m.errors.WithLabelValues(name).Inc()
		s.log.Error("analytics query failed", "query", name, "step", "today", "err", err)
		return out, fmt.Errorf("analytics %s: %w", name, err)
	}
	index := map[string]int{}
	for i := range days {
		d := today.AddDate(0, 0, i-days+1).Format(time.DateOnly)
		index[d] = i
		out.Days = append(out.Days, d)
	}
	err := s.query(ctx, name, q, args, func(scan func(...any) error) error {
		var day time.Time
		var key string
		var v float64
		if err := scan(&day, &key, &v); err != nil {
			return err
		}
		i, ok := index[day.Format(time.DateOnly)]
		if !ok {
			return nil
		}
		if out.Series[key] == nil {
			out.Series[key] = make([]float64, days)
		}
		out.Series[key][i] = v
		return nil
	})
	return out, err
}

// Cohort is the users first seen on Day and how many came back.
type Cohort struct {
	Day    string `json:"day"`
	Users  uint64 `json:"users"`
	Day1   uint64 `json:"day1"`   // active again the next day
	Day7   uint64 `json:"day7"`   // active again 7 days later
	Mature bool   `json:"mature"` // Day + 7 is today or earlier: Day7 is final
}

// Retention returns, for each of the last days days, its cohort of new
// users (first event in user_daily that day) and their day-1 / day-7
// returns. A cohort is only as new as user_daily's history: users active
// before the window count as new on their first day in it.
func (s *Store) Retention(ctx context.Context, days int) ([]Cohort, error) {
	if err := checkDays(days); err != nil {
		return nil, err
	}
	q := "SELECT first, count() AS users, countIf(has(ds, first + 1)) AS d1, countIf(has(ds, first + 7)) AS d7, first + 7 <= today() FROM " +
		"(SELECT user_id, min(day) AS first, groupUniqArray(day) AS ds FROM " + s.db + ".user_daily WHERE day > today() - ? GROUP BY user_id) " +
		"GROUP BY first ORDER BY first"
	var out []Cohort
	err := s.query(ctx, "retention", q, []any{days}, func(scan func(...any) error) error {
		var c Cohort
		var day time.Time
		var mature uint8
		if err := scan(&day, &c.Users, &c.Day1, &c.Day7, &mature); err != nil {
			return err
		}
		c.Day, c.Mature = day.Format(time.DateOnly), mature == 1
		out = append(out, c)
		return nil
	})
	return out, err
}

// StationStat is a station's plays and skips over a window.
type StationStat struct {
	StationID uint64  `json:"station_id"`
	Plays     uint64  `json:"plays"`
	Skips     uint64  `json:"skips"`
	SkipRate  float64 `json:"skip_rate"` // skips / (plays + skips)
}

// Stations returns every station's plays, skips and skip rate of the last
// days days, from station_daily.
func (s *Store) Stations(ctx context.Context, days int) ([]StationStat, error) {
	if err := checkDays(days); err != nil {
		return nil, err
	}
	q := "SELECT station_id, sum(plays) AS p, sum(skips) AS sk, sk / (p + sk) FROM " + s.db +
		".station_daily WHERE day > today() - ? GROUP BY station_id ORDER BY station_id"
	var out []StationStat
	err := s.query(ctx, "stations", q, []any{days}, func(scan func(...any) error) error {
		var st StationStat
		if err := scan(&st.StationID, &st.Plays, &st.Skips, &st.SkipRate); err != nil {
			return err
		}
		out = append(out, st)
		return nil
	})
	return out, err
}
