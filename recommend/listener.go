package recommend

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onair/onair/ingest"
)

// Listener state in Redis, every key tagged by the listener ({uid}):
//
//	r{uid}:x  ZSET  item id → ms of the newest finish or skip (trimmed to ExcludeFor, 1000 members)
//	r{uid}:a  HASH  "t:<tag>" / "c:<category>" → affinity; "@o:<partition>" → last applied offset
//	r{uid}:c  HASH  the same keys from the analytics rollup (affinity.go)
//
// The listener consumer (group <Group>-listeners on the events topic)
// writes them; the request path reads them in one pipelined round trip.
func (e *Engine) excludedKey(uid uint64) string {
	return e.cfg.Prefix + "r{" + strconv.FormatUint(uid, 10) + "}:x"
}

func (e *Engine) affinityKey(uid uint64) string {
	return e.cfg.Prefix + "r{" + strconv.FormatUint(uid, 10) + "}:a"
}

// listenerState reads uid's state; on a Redis failure it returns the empty
// state and the error (the caller serves the public list: fail open).
func (e *Engine) listenerState(ctx context.Context, uid uint64, now time.Time) (ListenerState, error) {
	var ls ListenerState
	if e.cfg.Redis == nil || uid == 0 {
		return ls, nil
	}
	cutoff := strconv.FormatInt(now.Add(-e.cfg.ExcludeFor).UnixMilli(), 10)
	pipe := e.cfg.Redis.Pipeline()
	x := pipe.ZRangeByScore(ctx, e.excludedKey(uid), &redis.ZRangeBy{Min: cutoff, Max: "+inf"})
	a := pipe.HGetAll(ctx, e.affinityKey(uid))
	var c *redis.MapStringStringCmd
	if e.cfg.ClickHouse != nil {
		c = pipe.HGetAll(ctx, e.rollupKey(uid))
		e.seen.add(uid)
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		e.m.errors.WithLabelValues("listener_state").Inc()
		return ls, fmt.Errorf("cannot read listener %d state: %w", uid, err)
	}
	if members := x.Val(); len(members) > 0 {
		ls.Excluded = make(map[uint64]bool, len(members))
		for _, m := range members {
			if id, err := strconv.ParseUint(m, 10, 64); err == nil {
				ls.Excluded[id] = true
			}
		}
	}
	for _, h := range []map[string]string{a.Val(), mapOf(c)} {
		for k, v := range h {
			if k == "" || k[0] == '@' {
				continue
			}
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				if ls.Affinity == nil {
					ls.Affinity = make(map[string]float64, len(h))
				}
				ls.Affinity[k] += f // recent feedback plus the 30-day rollup
			}
		}
	}
	return ls, nil
}

func mapOf(c *redis.MapStringStringCmd) map[string]string {
	if c == nil {
		return nil
	}
	return c.Val()
}

// applyScript applies one listener's records of one partition, each only
// if its offset is past the one recorded, so a replay counts nothing twice.
// KEYS: x, a. ARGV: partition, cutoff ms, then per record: offset, item
// (or "" for none), ts, n, then n (field, delta) pairs.
var applyScript = redis.NewScript(`
local mark = '@o:' .. ARGV[1]
local last = tonumber(redis.call('HGET', KEYS[2], mark) or '-1')
local i = 3
while i <= #ARGV do
  local off, item, ts, n = tonumber(ARGV[i]), ARGV[i+1], ARGV[i+2], tonumber(ARGV[i+3])
  if off > last then
    if item ~= '' then redis.call('ZADD', KEYS[1], 'GT', ts, item) end
    for j = 0, n - 1 do
      redis.call('HINCRBYFLOAT', KEYS[2], ARGV[i+4+2*j], ARGV[i+5+2*j])
    end
    last = off
  end
  i = i + 4 + 2 * n
end
redis.call('HSET', KEYS[2], mark, last)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -1001)
return 0
`)

// listener follows the events topic in a consumer group of its own and
// folds radio feedback into listener state.
type listener struct {
	e        *Engine
	cl       *kgo.Client
	assigned chan struct{} // closed at the first assignment
}

// newListener joins the group. A partition without a committed offset
// (a new group, or one whose owner never saw a record) starts at the
// events of the last listenerReplay: listener state is about recent
// behaviour, replaying a long history on a first deployment would only
// delay it, and a partition that moves to another node before its first
// commit must not skip what arrived meanwhile. The offset fence in
// applyScript makes the overlap harmless.
func (e *Engine) newListener() (*listener, error) {
	l := &listener{e: e, assigned: make(chan struct{})}
	var once sync.Once
	from := time.Now().Add(-listenerReplay).UnixMilli()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.cfg.Brokers...), kgo.ConsumerGroup(e.cfg.Group+"-listeners"),
		kgo.ConsumeTopics(e.cfg.EventsTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(from)),
		kgo.DisableAutoCommit(), kgo.FetchMaxWait(200*time.Millisecond),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) { once.Do(func() { close(l.assigned) }) }))
	if err != nil {
		return nil, fmt.Errorf("recommend: listener consumer: %w", err)
	}
	l.cl = cl
	return l, nil
}

func (l *listener) run(ctx context.Context) {
	for ctx.Err() == nil {
		fetches := l.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fetches.EachError(func(t string, p int32, err error) {
			l.e.m.errors.WithLabelValues("fetch").Inc()
			l.e.log.Error("listener events fetch failed", "topic", t, "partition", p, "err", err)
		})
		recs := fetches.Records()
		if len(recs) == 0 {
			continue
		}
		// Retry until Redis takes the batch: commits follow applies, and
		// the offset fence makes a retried or replayed batch harmless.
		for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
			err := l.apply(ctx, recs)
			if err == nil {
				break
			}
			l.e.m.errors.WithLabelValues("listener_apply").Inc()
			l.e.log.Error("cannot apply listener events to Redis; retrying", "records", len(recs), "err", err, "backoff", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
		}
		if err := l.cl.CommitRecords(ctx, recs...); err != nil && ctx.Err() == nil {
			l.e.log.Warn("listener offsets not committed (a restart replays; the fence keeps it exact)", "err", err)
		}
	}
}

// listenerReplay is how far back a partition without a commit starts.
const listenerReplay = 10 * time.Minute

type userPart struct {
	uid  uint64
	part int32
}

// apply folds recs into Redis: one script call per (listener, partition).
func (l *listener) apply(ctx context.Context, recs []*kgo.Record) error {
	snap := l.e.actors.snap.Load()
	args := map[userPart][]any{}
	var order []userPart
	var ev ingest.Event
	for _, r := range recs {
		if err := ingest.DecodeRecord(r.Value, &ev); err != nil {
			continue // the aggregator counts undecodable records
		}
		item, deltas := feedback(&ev, snap)
		if item == "" && len(deltas) == 0 {
			continue
		}
		k := userPart{ev.UserID, r.Partition}
		if _, ok := args[k]; !ok {
			order = append(order, k)
		}
		a := append(args[k], r.Offset, item, ev.TS, len(deltas)/2)
		args[k] = append(a, deltas...)
		l.e.m.listenerEvts.Inc()
	}
	if len(order) == 0 {
		return nil
	}
	cutoff := time.Now().Add(-l.e.cfg.ExcludeFor).UnixMilli()
	pipe := l.e.cfg.Redis.Pipeline()
	for _, k := range order {
		argv := append([]any{k.part, cutoff}, args[k]...)
		applyScript.Run(ctx, pipe, []string{l.e.excludedKey(k.uid), l.e.affinityKey(k.uid)}, argv...)
	}
	_, err := pipe.Exec(ctx)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		for _, k := range order {
			argv := append([]any{k.part, cutoff}, args[k]...)
			if err := applyScript.Run(ctx, l.e.cfg.Redis, []string{l.e.excludedKey(k.uid), l.e.affinityKey(k.uid)}, argv...).Err(); err != nil && err != redis.Nil {
				return err
			}
		}
		return nil
	}
	if err == redis.Nil {
		err = nil
	}
	return err
}

// Feedback rules:
//   - skip of a catalog item: excluded; its category and tags −1.
//   - play of a catalog item: its category and tags +1; excluded as
//     finished when listened_ms >= 90 % of the duration (the event's, else
//     the item's).
//   - progress of a catalog item at >= 95 % of its duration: excluded as
//     finished (no affinity: players report progress every few seconds).
//
// An event counts for an item when its biz and item_id name it.
func feedback(ev *ingest.Event, snap *Snapshot) (item string, deltas []any) {
	it, ok := snap.Item(ev.ItemID)
	if !ok || it.Biz != ev.Biz.String() {
		return "", nil
	}
	dur := int64(ev.DurationMs)
	if dur == 0 {
		dur = it.DurationMs
	}
	var delta string
	switch ev.Type {
	case ingest.TypeSkip:
		item, delta = strconv.FormatUint(it.ItemID, 10), "-1"
	case ingest.TypePlay:
		delta = "1"
		if dur > 0 && int64(ev.ListenedMs)*10 >= dur*9 {
			item = strconv.FormatUint(it.ItemID, 10)
		}
	case ingest.TypeProgress:
		if dur > 0 && int64(ev.PositionMs)*100 >= dur*95 {
			item = strconv.FormatUint(it.ItemID, 10)
		}
		return item, nil
	default:
		return "", nil
	}
	deltas = append(deltas, "c:"+it.Category, delta)
	for _, t := range it.Tags {
		deltas = append(deltas, "t:"+t, delta)
	}
	return item, deltas
}
