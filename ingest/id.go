package ingest

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"time"
)

// Server-assigned event ids are 63-bit snowflakes rendered in base 36
// (12–13 characters):
//
//	bits 62..22  milliseconds since idEpoch (41 bits: until 2094)
//	bits 21..12  node (10 bits: 0..1023, unique per API process)
//	bits 11..0   sequence within the millisecond (4096/ms per node)
//
// They are unique across nodes as long as nodes have distinct numbers, and
// they sort by time per node, which is what makes them compress to almost
// nothing in ClickHouse (a random UUID costs ~20 B a row). Downstream
// deduplicates on (user_id, event_id), so a client id that happens to equal
// a server id can only collide with that same user's events.
const (
	idNodeBits = 10
	idSeqBits  = 12
	// MaxIDNode is the largest node number NewIDGen accepts.
	MaxIDNode = 1<<idNodeBits - 1
)

// idEpoch is 2025-01-01T00:00:00Z in Unix milliseconds.
const idEpoch = 1735689600000

// IDGen hands out event ids. It is safe for concurrent use and lock-free.
type IDGen struct {
	node uint64
	// last is the last issued (ms<<idSeqBits | seq). Next moves it forward
	// with a CAS, so ids keep increasing when the clock steps back (they
	// borrow the last millisecond's sequence, then the next millisecond's)
	// and when more than 4096 ids are wanted in one millisecond.
	last atomic.Uint64
	now  func() time.Time // tests replace it
}

// NewIDGen returns a generator for node, which must be < 1024 and unique
// among the API processes sharing a Kafka cluster.
func NewIDGen(node uint16) (*IDGen, error) {
	if node > MaxIDNode {
		return nil, fmt.Errorf("id node %d out of range 0..%d", node, MaxIDNode)
	}
	return &IDGen{node: uint64(node), now: time.Now}, nil
}

// Next returns a new id. After a restart ids stay unique if the clock has
// not gone back by more than the process ran ahead of it, which at under
// 4096 ids/ms per node it never does.
func (g *IDGen) Next() string {
	var buf [16]byte
	return string(strconv.AppendUint(buf[:0], g.next(), 36))
}

func (g *IDGen) next() uint64 {
	ms := uint64(max(g.now().UnixMilli()-idEpoch, 0))
	cand := ms << idSeqBits
	for {
		last := g.last.Load()
		v := cand
		if v <= last {
			v = last + 1
		}
		if g.last.CompareAndSwap(last, v) {
			return (v>>idSeqBits)<<(idNodeBits+idSeqBits) | g.node<<idSeqBits | v&(1<<idSeqBits-1)
		}
	}
}
