package recommend

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// catalogSink writes every item record of the catalog topic to
// onair.catalog, in a consumer group of its own (one writer per record
// across radio nodes), committing after each INSERT. A replay inserts the
// same (item_id, version = Kafka offset) rows again, which the table's
// ReplacingMergeTree collapses, so FINAL / argMax answers stay exact.
type catalogSink struct {
	e  *Engine
	cl *kgo.Client
}

const catalogColumns = "item_id, biz, album_id, artist_id, title, category, tags, region, score, online_at, duration_ms, status, starts_at, ends_at, version"

func (e *Engine) newCatalogSink() (*catalogSink, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.cfg.Brokers...), kgo.ConsumerGroup(e.cfg.Group+"-catalog"),
		kgo.ConsumeTopics(e.cfg.Topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(), kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("recommend: catalog sink consumer: %w", err)
	}
	return &catalogSink{e: e, cl: cl}, nil
}

func (s *catalogSink) run(ctx context.Context) {
	for ctx.Err() == nil {
		fetches := s.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		recs := fetches.Records()
		if len(recs) == 0 {
			continue
		}
		for backoff := 200 * time.Millisecond; ; backoff = min(2*backoff, 10*time.Second) {
			err := s.insert(ctx, recs)
			if err == nil {
				break
			}
			s.e.m.errors.WithLabelValues("clickhouse").Inc()
			s.e.log.Error("cannot insert catalog rows; retrying", "records", len(recs), "err", err, "backoff", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
		}
		if err := s.cl.CommitRecords(ctx, recs...); err != nil && ctx.Err() == nil {
			s.e.log.Warn("catalog sink offsets not committed (a restart re-inserts; the table collapses it)", "err", err)
		}
	}
}

func (s *catalogSink) insert(ctx context.Context, recs []*kgo.Record) error {
	batch, err := s.e.cfg.ClickHouse.PrepareBatch(ctx, "INSERT INTO "+s.e.cfg.Database+".catalog ("+catalogColumns+") VALUES")
	if err != nil {
		return err
	}
	n := 0
	for _, r := range recs {
		var c change
		if json.Unmarshal(r.Value, &c) != nil || c.Item == nil {
			continue
		}
		it := c.Item
		tags := it.Tags
		if tags == nil {
			tags = []string{}
		}
		if err := batch.Append(it.ItemID, it.Biz, it.AlbumID, it.ArtistID, it.Title, it.Category, tags, it.Region,
			it.Score, uint64(it.OnlineAt), uint64(it.DurationMs), string(it.Status), uint64(it.StartsAt), uint64(it.EndsAt), uint64(r.Offset)); err != nil {
			_ = batch.Abort()
			return fmt.Errorf("cannot append item %d: %w", it.ItemID, err)
		}
		n++
	}
	if n == 0 {
		return batch.Abort()
	}
	return batch.Send()
}
