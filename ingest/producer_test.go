package ingest

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func newCluster(t testing.TB) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(8, "events"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func newClient(t testing.TB, c *kfake.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{
		kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(time.Millisecond),
		kgo.RecordDeliveryTimeout(10 * time.Second),
	}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func newProducer(t testing.TB, cl *kgo.Client, timeout time.Duration, hooks Hooks) *Producer {
	t.Helper()
	ids, _ := NewIDGen(3)
	p, err := NewProducer(ProducerConfig{Client: cl, IDs: ids, Timeout: timeout, Hooks: hooks})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func testEvents(n int) []Event {
	evs := make([]Event, n)
	for i := range evs {
		evs[i] = Event{Type: TypeProgress, UserID: uint64(1 + i%37), Biz: BizAudio, ItemID: uint64(i + 1),
			TS: testTS + int64(i), PositionMs: uint64(i * 1000), DurationMs: 1800000, Device: "ios"}
		if i%3 == 0 {
			evs[i].EventID = "client-" + strconv.Itoa(i)
		}
	}
	return evs
}

func TestNewProducerValidates(t *testing.T) {
	ids, _ := NewIDGen(1)
	cl := newClient(t, newCluster(t))
	for _, cfg := range []ProducerConfig{{IDs: ids}, {Client: cl}, {Client: cl, IDs: ids, Timeout: -1}} {
		if _, err := NewProducer(cfg); err == nil {
			t.Fatalf("%+v accepted", cfg)
		}
	}
	p, err := NewProducer(ProducerConfig{Client: cl, IDs: ids})
	if err != nil || p.topic != "events" || p.timeout != 5*time.Second {
		t.Fatalf("%+v %v", p, err)
	}
}

func TestProduceRoundTrip(t *testing.T) {
	c := newCluster(t)
	var produced atomic.Int64
	p := newProducer(t, newClient(t, c), 5*time.Second, Hooks{OnProduced: func(n int, _ time.Duration) { produced.Add(int64(n)) }})
	start := time.Now()
	want := map[string]Event{}
	serverIDs := map[string]bool{}
	for round := range 3 { // reuses pooled batches
		evs := testEvents(300)
		if err := p.Produce(context.Background(), evs); err != nil {
			t.Fatal(err)
		}
		for i, e := range evs {
			if e.EventID == "" {
				t.Fatalf("round %d event #%d has no id", round, i)
			}
			if i%3 != 0 {
				if serverIDs[e.EventID] {
					t.Fatalf("server id %q assigned twice", e.EventID)
				}
				serverIDs[e.EventID] = true
				if !e.ServerID {
					t.Fatalf("server id %q without ServerID", e.EventID)
				}
			} else if e.EventID != "client-"+strconv.Itoa(i) || e.ServerID {
				t.Fatalf("client id replaced by %q", e.EventID)
			}
			want[e.EventID+"/"+strconv.Itoa(round)] = e
		}
	}
	if produced.Load() != 900 {
		t.Fatalf("OnProduced saw %d events", produced.Load())
	}

	cons := newClient(t, c, kgo.ConsumeTopics("events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := 0
	partitions := map[string]int32{}
	for got < 900 {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of 900 records: %v", got, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			var e Event
			if err := DecodeRecord(r.Value, &e); err != nil {
				t.Fatalf("cannot decode record %d/%d (%d bytes): %v", r.Partition, r.Offset, len(r.Value), err)
			}
			if string(r.Key) != strconv.FormatUint(e.UserID, 10) {
				t.Fatalf("key %q for user %d", r.Key, e.UserID)
			}
			if p, ok := partitions[string(r.Key)]; ok && p != r.Partition {
				t.Fatalf("user %s in partitions %d and %d", r.Key, p, r.Partition)
			}
			partitions[string(r.Key)] = r.Partition
			if r.Timestamp.Before(start.Add(-time.Millisecond)) || r.Timestamp.After(time.Now()) {
				t.Fatalf("record timestamp %v is not the server's append time", r.Timestamp)
			}
			matched := false
			for r := range 3 {
				if w, ok := want[e.EventID+"/"+strconv.Itoa(r)]; ok && w == e {
					delete(want, e.EventID+"/"+strconv.Itoa(r))
					matched = true
					break
				}
			}
			if !matched {
				t.Fatalf("record %+v was not produced", e)
			}
			got++
		})
	}
	if len(want) != 0 {
		t.Fatalf("%d events not read back", len(want))
	}
}

// failProduce makes the cluster answer every Produce request with code on
// the partitions for which fail returns true, acknowledging the others
// without storing them: the worst case, a request half acknowledged.
func failProduce(c *kfake.Cluster, code int16, fail func(partition int32) bool) {
	c.ControlKey(int16(kmsg.Produce), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kr.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				if fail(rp.Partition) {
					sp.ErrorCode = code
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
}

func TestProduceUnavailable(t *testing.T) {
	f := func(name string, breakIt func(*kfake.Cluster)) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			var failed atomic.Int64
			var broken atomic.Bool
			p := newProducer(t, newClient(t, c), 500*time.Millisecond, Hooks{
				OnProduced: func(int, time.Duration) {
					if broken.Load() {
						t.Error("OnProduced called for a failure")
					}
				},
				OnFailed: func(n int, _ error) { failed.Add(int64(n)) },
			})
			// Warm up: metadata loaded, producer id assigned.
			if err := p.Produce(context.Background(), testEvents(1)); err != nil {
				t.Fatal(err)
			}
			broken.Store(true)
			breakIt(c)
			start := time.Now()
			err := p.Produce(context.Background(), testEvents(200))
			took := time.Since(start)
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("got %v, want ErrUnavailable", err)
			}
			if took > 1500*time.Millisecond {
				t.Fatalf("failed after %s, timeout 500ms", took)
			}
			if failed.Load() != 200 {
				t.Fatalf("OnFailed saw %d events", failed.Load())
			}
			t.Logf("%s: %v after %s", name, err, took.Round(time.Millisecond))
		})
	}
	// Retriable: kgo retries until our timeout.
	f("not enough replicas", func(c *kfake.Cluster) {
		failProduce(c, kerr.NotEnoughReplicas.Code, func(int32) bool { return true })
	})
	// Connection dropped on every produce.
	f("connection closed", func(c *kfake.Cluster) {
		c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			return nil, errors.New("broker down"), true
		})
	})
	// One partition fails for good, the others acknowledge.
	f("half acknowledged", func(c *kfake.Cluster) {
		failProduce(c, kerr.InvalidRecord.Code, func(p int32) bool { return p == 3 })
	})
	// The broker is gone.
	f("cluster closed", func(c *kfake.Cluster) { c.Close() })
}

func TestProduceCallerCancels(t *testing.T) {
	c := newCluster(t)
	p := newProducer(t, newClient(t, c), 5*time.Second, Hooks{})
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		return nil, errors.New("broker down"), true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := p.Produce(ctx, testEvents(10))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
}

func BenchmarkProduce(b *testing.B) {
	c := newCluster(b)
	p := newProducer(b, newClient(b, c), 5*time.Second, Hooks{})
	const perCall = 100
	evs := testEvents(perCall)
	b.ReportAllocs()
	// Concurrent calls, as concurrent HTTP requests make them; the
	// linger batches them together.
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		mine := make([]Event, perCall)
		for pb.Next() {
			copy(mine, evs)
			if err := p.Produce(context.Background(), mine); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*perCall)/b.Elapsed().Seconds(), "events/s")
}
