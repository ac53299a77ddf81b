package aggregate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onair/onair/history"
	"github.com/onair/onair/internal/testenv"
)

// The rebalance test's crashing member (see TestAggregatorChild).
const (
	crasherMode = "crasher"
	crasherID   = "rebalance-crasher"
)

// TestRebalanceMidStreamKeepsExactness: partitions move between members
// while data is buffered, and one member crashes (SIGKILL, no goodbye)
// holding rows it never inserted. Member a runs from the start, the
// crasher (a child process) joins, is killed once it has applied a round
// to Redis but inserted nothing to ClickHouse, c joins, a leaves
// gracefully. Each move is checked in the group itself: the crasher owned
// partitions, and after its session expired they belong to live members;
// after a leaves, c owns everything. ClickHouse ends with every event
// exactly once, and Redis and ClickHouse with the newest positions.
func TestRebalanceMidStreamKeepsExactness(t *testing.T) {
	t.Parallel()
	const partitions = 8
	h := newHarness(t, partitions)
	x := newExpectation()
	base := time.Now().Add(-3 * time.Hour).UnixMilli()
	round := 0
	send := func() {
		evs := gen(rand.New(rand.NewPCG(uint64(round), 2)), 300, 50, 10, base+int64(round)*1000)
		round++
		h.produce(evs...)
		for _, e := range evs {
			x.add(e)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)

	stopA := h.start(h.config())
	crasher := h.startCrasher()
	owners := h.waitOwners(adm, "both members to share the partitions", func(o map[int32]string) bool {
		return len(o) == partitions && slices.Contains(mapValues(o), crasherID) && slices.ContainsFunc(mapValues(o), func(m string) bool { return m != crasherID })
	})
	var crashed []int32
	for p, m := range owners {
		if m == crasherID {
			crashed = append(crashed, p)
		}
	}
	for range 3 {
		send()
	}
	// Every member applied the rounds to Redis, so the crasher fetched its
	// share; it never inserts to ClickHouse, so that share is buffered.
	testenv.Wait(t, 30*time.Second, func() bool { return h.redisMismatch(x) == "" }, "Redis to hold the rounds: %s", h.redisMismatch(x))
	if n := h.totalEvents(); n >= uint64(len(x.ids)) {
		t.Fatalf("ClickHouse holds all %d events before the crash: nothing was buffered in the crasher", n)
	}
	if err := crasher.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = crasher.Wait()
	owners = h.waitOwners(adm, "the crasher's partitions to move to live members", func(o map[int32]string) bool {
		return len(o) == partitions && !slices.Contains(mapValues(o), crasherID)
	})
	t.Logf("the crasher owned partitions %v; now %v", crashed, owners)

	for range 2 {
		send()
	}
	h.start(h.config()) // c joins mid-stream
	for range 2 {
		send()
	}
	before := h.waitOwners(adm, "a and c to share the partitions", func(o map[int32]string) bool {
		return len(o) == partitions && len(distinct(mapValues(o))) == 2
	})
	stopA() // and a leaves
	h.waitOwners(adm, "c to own every partition once a left", func(o map[int32]string) bool {
		vals := distinct(mapValues(o))
		return len(o) == partitions && len(vals) == 1 && slices.Contains(distinct(mapValues(before)), vals[0])
	})
	for range 2 {
		send()
	}
	testenv.Wait(t, 60*time.Second, func() bool { return h.totalEvents() >= uint64(len(x.ids)) },
		"ClickHouse to hold %d events (has %d)", len(x.ids), h.totalEvents())
	h.check(x)
}

// startCrasher starts a member of the group in a child process (killed
// with the test binary).
func (h *harness) startCrasher() *exec.Cmd {
	h.t.Helper()
	cmd := testenv.StartChild(h.t, "TestAggregatorChild", h.childWorld(crasherMode))
	h.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// waitOwners polls the consumer group until ok holds for its partition
// owners (partition -> instance id, or member id for dynamic members) in a
// stable group, and returns them.
func (h *harness) waitOwners(adm *kadm.Client, what string, ok func(map[int32]string) bool) map[int32]string {
	h.t.Helper()
	var owners map[int32]string
	testenv.Wait(h.t, 30*time.Second, func() bool {
		owners = groupOwners(adm)
		return owners != nil && ok(owners)
	}, "%s; owners %v", what, latest{&owners})
	return owners
}

// latest prints the owners as they are when printed (the last poll's).
type latest struct{ m *map[int32]string }

func (l latest) String() string { return fmt.Sprint(*l.m) }

// groupOwners describes the aggregators' group: nil unless it is stable.
func groupOwners(adm *kadm.Client) map[int32]string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	groups, err := adm.DescribeGroups(ctx, "onair-aggregate")
	if err != nil {
		return nil
	}
	g, ok := groups["onair-aggregate"]
	if !ok || g.Err != nil || g.State != "Stable" {
		return nil
	}
	owners := map[int32]string{}
	for _, m := range g.Members {
		name := m.MemberID
		if m.InstanceID != nil {
			name = *m.InstanceID
		}
		a, ok := m.Assigned.AsConsumer()
		if !ok {
			continue
		}
		for _, t := range a.Topics {
			for _, p := range t.Partitions {
				owners[p] = name
			}
		}
	}
	return owners
}

// redisMismatch compares Redis's resume positions with the model.
func (h *harness) redisMismatch(x *expectation) string {
	for k, want := range x.pos {
		ik, err := history.ParseItemKey(k[strings.IndexByte(k, '/')+1:])
		if err != nil {
			h.t.Fatal(err)
		}
		got, err := h.hist.Progress(context.Background(), x.user[k], []history.ItemKey{ik})
		if err != nil {
			return err.Error()
		}
		if got[ik].PositionMs != want.positionMs {
			return fmt.Sprintf("Redis progress %s = %d, want %d", k, got[ik].PositionMs, want.positionMs)
		}
	}
	return ""
}

func mapValues(m map[int32]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func distinct(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}
