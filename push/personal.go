package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onair/onair/rooms/wire"
)

// The personal channel: frames addressed to one user (a PK invitation, a
// failed gift), delivered to every connection that user holds, on any push
// node, whatever room it watches (or none: GET /v1/ws without room).
//
// Path: Notifier.Notify produces the frame to the pushes topic with the key
// "u<user id>" (wire.UserKey); every push node consumes every partition
// already, and the consumer hands a "u" record to the node's user registry
// (users) instead of a room. So a personal frame reaches each node once per
// record, in the order of its partition, with no new moving part.
//
// Delivery: at most once per connection. A node reads from the topic's end
// at start and connections get what is published while they are open; a
// frame published while a user has no connection is gone (its state must
// be readable elsewhere: GET /v1/pk/{id}). A personal frame carries the
// producer's "id" (e.g. "pk_invite:<pk id>"): a client that sees it twice
// (two of its connections, a producer retry) shows it once. Clients may
// ack it like a gift; it is not re-sent (a missed invitation expires and
// is readable by GET; a re-send would only race the expiry).

// Notifier publishes personal frames; it implements wire.Notifier. It
// needs only a Kafka client, so the api role calls it without a gateway.
type Notifier struct {
	// Kafka produces to Topic; it should wait for all in-sync replicas.
	Kafka *kgo.Client
	// Topic is the pushes topic; "" = "pushes".
	Topic string
}

var _ wire.Notifier = (*Notifier)(nil)

// Notify publishes frame (a JSON object with a "type" and an "id") to
// userID's connections and waits for Kafka's acknowledgement.
func (n *Notifier) Notify(ctx context.Context, userID uint64, frame any) error {
	if userID == 0 {
		return errors.New("push: notify: user id must be positive")
	}
	v, err := json.Marshal(frame)
	if err != nil {
		return fmt.Errorf("push: notify user %d: %w", userID, err)
	}
	var h frameHead
	if err := json.Unmarshal(v, &h); err != nil || h.Type == "" {
		return fmt.Errorf("push: notify user %d: a frame is a JSON object with a type (%d bytes)", userID, len(v))
	}
	topic := n.Topic
	if topic == "" {
		topic = "pushes"
	}
	rec := &kgo.Record{Topic: topic, Key: []byte(wire.UserKey(userID)), Value: v}
	if err := n.Kafka.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("push: notify user %d (%s frame): %w", userID, h.Type, err)
	}
	return nil
}

// users is the node's registry of connections by user, sharded like the
// rooms.
type users struct {
	shards [numHubShards]userShard
}

type userShard struct {
	mu sync.RWMutex
	m  map[uint64]map[*client]struct{}
}

func newUsers() *users {
	u := &users{}
	for i := range u.shards {
		u.shards[i].m = make(map[uint64]map[*client]struct{})
	}
	return u
}

func (u *users) shard(id uint64) *userShard { return &u.shards[id%numHubShards] }

func (u *users) add(c *client) {
	s := u.shard(c.user)
	s.mu.Lock()
	cs := s.m[c.user]
	if cs == nil {
		cs = make(map[*client]struct{}, 1)
		s.m[c.user] = cs
	}
	cs[c] = struct{}{}
	s.mu.Unlock()
}

func (u *users) remove(c *client) {
	s := u.shard(c.user)
	s.mu.Lock()
	if cs := s.m[c.user]; cs != nil {
		delete(cs, c)
		if len(cs) == 0 {
			delete(s.m, c.user)
		}
	}
	s.mu.Unlock()
}

// deliver queues raw on every connection of user on this node and returns
// how many there were.
func (u *users) deliver(user uint64, raw []byte, now time.Time) int {
	s := u.shard(user)
	s.mu.RLock()
	targets := make([]*client, 0, len(s.m[user]))
	for c := range s.m[user] {
		targets = append(targets, c)
	}
	s.mu.RUnlock()
	for _, c := range targets {
		c.send(outMsg{data: raw}, now)
	}
	return len(targets)
}

// personal is the consumer's path for a "u<id>" record.
func (c *consumer) personal(rec *kgo.Record) {
	g := c.g
	id, err := strconv.ParseUint(string(rec.Key[1:]), 10, 64)
	if err != nil || id == 0 {
		g.m.records.WithLabelValues("bad").Inc()
		g.log.Warn("push: personal record key is not u<user id>", "partition", rec.Partition, "offset", rec.Offset, "key", string(rec.Key))
		return
	}
	var h frameHead
	if err := json.Unmarshal(rec.Value, &h); err != nil || h.Type == "" {
		g.m.records.WithLabelValues("bad").Inc()
		g.log.Warn("push: bad personal frame", "user", id, "partition", rec.Partition, "offset", rec.Offset, "bytes", len(rec.Value))
		return
	}
	if g.personal.deliver(id, rec.Value, time.Now()) == 0 {
		g.m.records.WithLabelValues("personal_no_conn").Inc()
		return
	}
	g.m.records.WithLabelValues("personal").Inc()
}
