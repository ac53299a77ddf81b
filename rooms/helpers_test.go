package rooms

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/kafka"
	"github.com/onair/onair/internal/testenv"
)

// world is one test's isolated setup: its own kfake cluster and Redis key
// prefix, a producer of events and a Board.
type world struct {
	t       testing.TB
	brokers []string
	rdb     *redis.Client
	prefix  string
	kcl     *kgo.Client
	prod    *ingest.Producer
	b       *Board
}

func newWorld(t testing.TB, partitions int, tune func(*Config)) *world {
	t.Helper()
	w := &world{t: t}
	w.brokers = testenv.Kafka(t, partitions).Addrs()
	w.rdb, w.prefix = testenv.Redis(t)
	var err error
	w.kcl, err = kgo.NewClient(kgo.SeedBrokers(w.brokers...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(time.Millisecond), kgo.RecordDeliveryTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.kcl.Close)
	ids, err := ingest.NewIDGen(1)
	if err != nil {
		t.Fatal(err)
	}
	if w.prod, err = ingest.NewProducer(ingest.ProducerConfig{Client: w.kcl, IDs: ids}); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Redis: w.rdb, Prefix: w.prefix, Kafka: w.kcl, Events: w.prod}
	if tune != nil {
		tune(&cfg)
	}
	if w.b, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	return w
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// frame is a record of the pushes topic.
type frame struct {
	room   uint64
	offset int64
	v      map[string]any
}

// records returns every record now in topic, per partition in offset order.
func (w *world) records(topic string) []*kgo.Record {
	w.t.Helper()
	ctx := ctxT(w.t)
	if err := w.kcl.Flush(ctx); err != nil { // frames published without waiting
		w.t.Fatal(err)
	}
	adm := kadm.NewClient(w.kcl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		w.t.Fatal(err)
	}
	want := int64(0)
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	cl, err := kgo.NewClient(kgo.SeedBrokers(w.brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		w.t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for int64(len(out)) < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			w.t.Fatalf("read %s: %d of %d records: %v", topic, len(out), want, err)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

// frames returns the frames published to room, in order.
func (w *world) frames(room uint64) []frame {
	w.t.Helper()
	var out []frame
	for _, r := range w.records(kafka.TopicPushes) {
		id, _ := strconv.ParseUint(string(r.Key), 10, 64)
		if id != room {
			continue
		}
		f := frame{room: id, offset: r.Offset}
		if err := json.Unmarshal(r.Value, &f.v); err != nil {
			w.t.Fatalf("frame at offset %d is not JSON: %v: %s", r.Offset, err, r.Value)
		}
		out = append(out, f)
	}
	return out
}

// ofType keeps the frames of one type.
func ofType(fs []frame, typ string) []frame {
	var out []frame
	for _, f := range fs {
		if f.v["type"] == typ {
			out = append(out, f)
		}
	}
	return out
}

func (w *world) open(room, anchor uint64) {
	w.t.Helper()
	if _, err := w.b.SetRoom(ctxT(w.t), room, true, Caller{UserID: anchor}, 0); err != nil {
		w.t.Fatalf("open room %d: %v", room, err)
	}
}

// board reads a room's ranking as user → score.
func (w *world) board(room uint64) map[uint64]uint64 {
	w.t.Helper()
	items, _, err := w.b.Leaderboard(ctxT(w.t), room, 10000)
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[uint64]uint64{}
	for _, e := range items {
		out[e.UserID] = e.Score
	}
	return out
}
