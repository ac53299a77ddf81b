package push

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// consumer reads every partition of the pushes topic, with no consumer
// group: every push node must see every room's frames. It starts at the
// end offsets listed before Start returns (older state comes from the
// snapshot), so a frame produced after Start is never missed.
type consumer struct {
	g  *Gateway
	cl *kgo.Client
}

func newConsumer(ctx context.Context, g *Gateway) (*consumer, error) {
	admin, err := kgo.NewClient(kgo.SeedBrokers(g.cfg.Brokers...))
	if err != nil {
		return nil, fmt.Errorf("push: cannot create Kafka client: %w", err)
	}
	ends, err := kadm.NewClient(admin).ListEndOffsets(ctx, g.cfg.Topic)
	admin.Close()
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("push: cannot list the end offsets of topic %q: %w", g.cfg.Topic, err)
	}
	parts := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) { parts[o.Partition] = kgo.NewOffset().At(o.Offset) })
	if len(parts) == 0 {
		return nil, fmt.Errorf("push: topic %q has no partitions (does it exist?)", g.cfg.Topic)
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(g.cfg.Brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{g.cfg.Topic: parts}),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	if err != nil {
		return nil, fmt.Errorf("push: cannot create Kafka consumer: %w", err)
	}
	return &consumer{g: g, cl: cl}, nil
}

func (c *consumer) run(ctx context.Context) {
	defer c.cl.Close()
	for {
		fs := c.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fs.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			c.g.m.errors.WithLabelValues("kafka").Inc()
			c.g.log.Warn("push: fetch failed", "topic", topic, "partition", p, "err", err)
		})
		fs.EachRecord(c.record)
	}
}

// record is the per-record work: one map lookup for rooms without viewers
// on this node, a parse and a queue append for the others.
func (c *consumer) record(rec *kgo.Record) {
	g := c.g
	if len(rec.Key) > 0 && rec.Key[0] == 'u' { // a personal frame (personal.go)
		c.personal(rec)
		return
	}
	id, err := strconv.ParseUint(string(rec.Key), 10, 64)
	if err != nil {
		g.m.records.WithLabelValues("bad").Inc()
		g.log.Warn("push: record key is not a room id", "partition", rec.Partition, "offset", rec.Offset, "key", string(rec.Key))
		return
	}
	r := g.hub.get(id)
	if r == nil {
		g.m.records.WithLabelValues("no_viewers").Inc()
		return
	}
	f, err := parseFrame(rec.Value, rec.Offset)
	if err != nil {
		g.m.records.WithLabelValues("bad").Inc()
		g.log.Warn("push: bad frame", "room", id, "partition", rec.Partition, "offset", rec.Offset, "err", err)
		return
	}
	g.m.records.WithLabelValues("fanned_out").Inc()
	f.at = rec.Timestamp
	r.add(f)
}
