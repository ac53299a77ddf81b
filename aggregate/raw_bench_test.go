package aggregate

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/testenv"
)

// The raw baselines of the end-to-end figure: what each component does on
// this machine with nothing of onair around it. The pipeline's events/s is
// quoted as a ratio to the slowest of them.

const rawN = 100_000

// BenchmarkRawKafkaProduce: 100 000 records of a typical size produced to
// the embedded kfake broker with acks=all.
func BenchmarkRawKafkaProduce(b *testing.B) {
	kf := testenv.Kafka(b, 8)
	cl, err := kgo.NewClient(kgo.SeedBrokers(kf.Addrs()...), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	e := ingest.Event{Type: ingest.TypeProgress, UserID: 42, Biz: ingest.BizAudio, ItemID: 123, TS: time.Now().UnixMilli(), PositionMs: 61000, DurationMs: 1800000, EventID: "1wegzrhy3azm", ServerID: true}
	val := ingest.AppendRecord(nil, &e)
	ctx := context.Background()
	for b.Loop() {
		done := make(chan error, rawN)
		for i := 0; i < rawN; i++ {
			cl.Produce(ctx, &kgo.Record{Topic: "events", Key: ingest.RecordKey(uint64(i % 10000)), Value: val}, func(_ *kgo.Record, err error) { done <- err })
		}
		for i := 0; i < rawN; i++ {
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*rawN)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkRawClickHouseInsert: one stream of 100 000-row columnar INSERTs
// into onair.events, as the aggregator sends them.
func BenchmarkRawClickHouseInsert(b *testing.B) {
	h := newHarness(b, 1)
	a := &Aggregator{cfg: Config{ClickHouse: h.ch, Database: h.db}}
	p := newPartition(0, -1)
	now := time.Now()
	for i := 0; i < rawN; i++ {
		p.events = append(p.events, eventRow{ev: ingest.Event{Type: ingest.TypeProgress, UserID: uint64(i % 10000), Biz: ingest.BizAudio,
			ItemID: uint64(i % 5000), TS: now.UnixMilli(), PositionMs: 61000, DurationMs: 1800000, EventID: strconv.Itoa(i)},
			offset: int64(i), appended: now})
	}
	ctx := context.Background()
	for b.Loop() {
		if _, err := a.insertEvents(ctx, []*partition{p}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*rawN)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkRawRedisZAdd: pipelined ZADDs (1 000 per pipeline) to Redis.
func BenchmarkRawRedisZAdd(b *testing.B) {
	rdb, prefix := testenv.Redis(b)
	ctx := context.Background()
	for b.Loop() {
		for i := 0; i < rawN; i += 1000 {
			pipe := rdb.Pipeline()
			for j := i; j < i+1000; j++ {
				pipe.ZAdd(ctx, prefix+"z"+strconv.Itoa(j%10000), redis.Z{Score: float64(j), Member: strconv.Itoa(j)})
			}
			if _, err := pipe.Exec(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*rawN)/b.Elapsed().Seconds(), "zadds/s")
}
