package recommend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// change is the value of a record on the catalog topic: exactly one of
// Item (key: decimal item id) and Station (key: "station:<id>"). The topic
// is compacted, so the latest record of each key is the entity's state.
type change struct {
	Item    *Item    `json:"item,omitempty"`
	Station *Station `json:"station,omitempty"`
}

func itemKey(id uint64) []byte { return strconv.AppendUint(nil, id, 10) }

func stationKey(id uint64) []byte { return []byte("station:" + strconv.FormatUint(id, 10)) }

// EnsureCatalogTopic creates the catalog topic compacted, or makes an
// existing one compacted (an older onair, or a broker that seeded it).
func EnsureCatalogTopic(ctx context.Context, cl *kgo.Client, topic string, partitions int) error {
	adm := kadm.NewClient(cl)
	compact := "compact"
	resp, err := adm.CreateTopic(ctx, int32(partitions), -1, map[string]*string{"cleanup.policy": &compact}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("cannot create topic %q: %w", topic, err)
	}
	alter, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "cleanup.policy", Value: &compact}}, topic)
	if err == nil {
		for _, r := range alter {
			if r.Err != nil {
				err = r.Err
			}
		}
	}
	if err != nil {
		return fmt.Errorf("cannot make topic %q compacted: %w", topic, err)
	}
	return nil
}

// produce writes changes to the catalog topic and waits for every ack.
func (e *Engine) produce(ctx context.Context, recs []*kgo.Record) error {
	if err := e.producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		e.m.errors.WithLabelValues("produce").Inc()
		e.log.Error("cannot produce catalog changes", "records", len(recs), "err", err)
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// ErrUnavailable: Kafka did not take the change; nothing was applied.
var ErrUnavailable = errors.New("recommend: catalog stream unavailable")

func (e *Engine) records(v []change) ([]*kgo.Record, error) {
	recs := make([]*kgo.Record, len(v))
	for i, c := range v {
		b, err := json.Marshal(c)
		if err != nil {
			return nil, err
		}
		var key []byte
		if c.Item != nil {
			key = itemKey(c.Item.ItemID)
		} else {
			key = stationKey(c.Station.ID)
		}
		recs[i] = &kgo.Record{Topic: e.cfg.Topic, Key: key, Value: b}
	}
	return recs, nil
}

// follower keeps this node's catalog: every record of the topic from the
// start, then every new one.
type follower struct {
	e     *Engine
	cl    *kgo.Client
	items map[uint64]*Item
	ver   uint64
	// read is the next offset to read per partition, for the catch-up.
	read map[int32]int64
}

func (e *Engine) newFollower() (*follower, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.cfg.Brokers...), kgo.ConsumeTopics(e.cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("recommend: catalog consumer: %w", err)
	}
	return &follower{e: e, cl: cl, items: map[uint64]*Item{}, read: map[int32]int64{}}, nil
}

// catchUp reads until every partition's end offset as of now.
func (f *follower) catchUp(ctx context.Context) error {
	ends, err := kadm.NewClient(f.cl).ListEndOffsets(ctx, f.e.cfg.Topic)
	if err != nil {
		return fmt.Errorf("recommend: cannot list end offsets of %q: %w", f.e.cfg.Topic, err)
	}
	behind := func() bool {
		caughtUp := true
		ends.Each(func(o kadm.ListedOffset) {
			if o.Offset > f.read[o.Partition] {
				caughtUp = false
			}
		})
		return !caughtUp
	}
	for behind() {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("recommend: catalog catch-up: %w", err)
		}
		f.poll(ctx)
	}
	return nil
}

func (f *follower) run(ctx context.Context) {
	for ctx.Err() == nil {
		f.poll(ctx)
	}
}

// poll applies one fetch: items into a new snapshot, then stations.
func (f *follower) poll(ctx context.Context) {
	fetches := f.cl.PollFetches(ctx)
	if ctx.Err() != nil {
		return
	}
	fetches.EachError(func(topic string, p int32, err error) {
		f.e.m.errors.WithLabelValues("fetch").Inc()
		f.e.log.Error("catalog fetch failed", "topic", topic, "partition", p, "err", err)
	})
	var changed []*Item
	var stations []*Station
	fetches.EachRecord(func(r *kgo.Record) {
		f.read[r.Partition] = r.Offset + 1
		var c change
		if err := json.Unmarshal(r.Value, &c); err != nil || (c.Item == nil) == (c.Station == nil) {
			f.e.m.records.WithLabelValues("invalid").Inc()
			f.e.log.Error("catalog record skipped: not one item or station", "partition", r.Partition, "offset", r.Offset, "bytes", len(r.Value), "err", err)
			return
		}
		if it := c.Item; it != nil {
			f.e.m.records.WithLabelValues("item").Inc()
			if old := f.items[it.ItemID]; old != nil {
				changed = append(changed, old)
			}
			f.items[it.ItemID] = it
			changed = append(changed, it)
			return
		}
		f.e.m.records.WithLabelValues("station").Inc()
		if err := c.Station.Prepare(); err != nil {
			f.e.m.records.WithLabelValues("invalid").Inc()
			f.e.log.Error("catalog record skipped: invalid station", "station", c.Station.ID, "offset", r.Offset, "err", err)
			return
		}
		stations = append(stations, c.Station)
	})
	if len(changed) > 0 {
		t0 := time.Now()
		f.ver++
		snap := NewSnapshot(f.ver, maps.Clone(f.items))
		f.e.m.catalogPublic.Observe(time.Since(t0).Seconds())
		f.e.actors.setSnapshot(snap, changed)
	}
	for _, st := range stations {
		f.e.actors.setStation(st)
	}
}
