package kafka

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func client(t *testing.T, e *Embedded, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(e.Addrs()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// A restart on the same DataDir must keep every record and the committed
// group offsets: `make run` restarts lose nothing, and the aggregator
// resumes where it committed.
func TestEmbeddedPersistsAcrossRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	e, err := StartEmbedded(EmbeddedConfig{DataDir: dir, Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	addr := e.Addrs()[0]
	cl := client(t, e)
	const n = 1000
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: TopicEvents, Key: fmt.Appendf(nil, "u%d", i%37), Value: fmt.Appendf(nil, "v%d", i)}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	offsets := kadm.Offsets{}
	offsets.Add(kadm.Offset{Topic: TopicEvents, Partition: 2, At: 5, LeaderEpoch: -1})
	if err := kadm.NewClient(cl).CommitAllOffsets(ctx, "g1", offsets); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	e.Close()
	e.Close() // idempotent

	// Same port too, as `make run` would use.
	e, err = StartEmbedded(EmbeddedConfig{Addr: addr, DataDir: dir, Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	cl = client(t, e, kgo.ConsumeTopics(TopicEvents), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]bool{}
	for len(seen) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records after restart: %v", len(seen), n, err)
		}
		if errs := fs.Errors(); len(errs) > 0 {
			t.Fatal(errs)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
	for i := 0; i < n; i++ {
		if !seen[fmt.Sprintf("v%d", i)] {
			t.Fatalf("record v%d lost across restart", i)
		}
	}
	got, err := kadm.NewClient(cl).FetchOffsets(ctx, "g1")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := got.Lookup(TopicEvents, 2); !ok || o.At != 5 {
		t.Fatalf("committed offset of events/2 after restart = %+v (found %v), want 5", o, ok)
	}
	// Partition count comes from the data dir, not the new config.
	e2parts, err := kadm.NewClient(cl).ListTopics(ctx, TopicEvents)
	if err != nil {
		t.Fatal(err)
	}
	if p := len(e2parts[TopicEvents].Partitions); p != 4 {
		t.Fatalf("events has %d partitions after restart, want 4", p)
	}
}

func TestEmbeddedPortInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = StartEmbedded(EmbeddedConfig{Addr: ln.Addr().String()})
	if err == nil || !strings.Contains(err.Error(), "cannot listen on "+ln.Addr().String()) {
		t.Fatalf("StartEmbedded on a taken port: %v", err)
	}
}

func TestEnsureTopics(t *testing.T) {
	t.Parallel()
	e, err := StartEmbedded(EmbeddedConfig{Topics: []string{TopicEvents}, Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	cl := client(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 2; i++ { // the second call finds everything there
		if err := EnsureTopics(ctx, cl, 3, TopicEvents, TopicPushes); err != nil {
			t.Fatalf("call #%d: %v", i, err)
		}
	}
	td, err := kadm.NewClient(cl).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p := len(td[TopicEvents].Partitions); p != 2 {
		t.Fatalf("existing events repartitioned to %d", p)
	}
	if p := len(td[TopicPushes].Partitions); p != 3 {
		t.Fatalf("pushes has %d partitions, want 3", p)
	}
	if _, ok := td[TopicCatalog]; ok {
		t.Fatal("catalog created although Topics did not name it")
	}
}
