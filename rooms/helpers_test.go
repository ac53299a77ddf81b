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
	vers    map[uint64]int64 // rooms' versions as a registry would number them
}

func newWorld(t testing.TB, partitions int, tune func(*Config)) *world {
	t.Helper()
	w := &world{t: t, vers: map[uint64]int64{}}
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

// open opens room with anchor in the hot copy, as the registry would
// after committing it.
func (w *world) open(room, anchor uint64) {
	w.t.Helper()
	w.put(room, anchor, true)
}

func (w *world) put(room, anchor uint64, open bool) Room {
	w.t.Helper()
	w.vers[room]++
	r, err := w.b.PutRoom(ctxT(w.t), RoomState{RoomID: room, Open: open, AnchorID: anchor, OpenedAt: time.Now().UnixMilli(), Ver: w.vers[room]})
	if err != nil {
		w.t.Fatalf("put room %d: %v", room, err)
	}
	return r
}

// startPK starts a PK between two open rooms, as the registry would on accept.
func (w *world) startPK(a, b uint64) (PKFrame, error) {
	now := time.Now().UnixMilli()
	return w.b.StartPK(ctxT(w.t), PKState{ID: PKID(a, b, now), RoomA: a, RoomB: b, Start: now, End: now + w.b.cfg.PKDuration.Milliseconds()})
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
