package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/refusal"
)

// Producer takes accepted events to Kafka: when Produce returns nil they
// are durably there (api.md: "202 means the events are durably in Kafka").
// An error matching ingest.ErrUnavailable means Kafka could not take them
// now (503, retry). *ingest.Producer implements it.
type Producer interface {
	Produce(ctx context.Context, events []ingest.Event) error
}

func (s *Server) mountIngest() {
	s.v1.POST("/progress", s.postProgress)
	s.v1.POST("/events", s.postEvents)
}

// Replies of POST /v1/progress, indexed by firstToday<<1 | paused: the hot
// path writes one of four constant bodies.
var progressReplies = [4][]byte{
	[]byte(`{"accepted":true,"first_today":false,"history_paused":false}` + "\n"),
	[]byte(`{"accepted":true,"first_today":false,"history_paused":true}` + "\n"),
	[]byte(`{"accepted":true,"first_today":true,"history_paused":false}` + "\n"),
	[]byte(`{"accepted":true,"first_today":true,"history_paused":true}` + "\n"),
}

// postProgress is POST /v1/progress: decode, produce, then Touch the
// user's day. A failed Touch does not fail the request (the event is in
// Kafka already): it is logged, counted (reason touch_failed) and reported
// as first_today false; the next event of the day then gets the true.
func (s *Server) postProgress(c *gin.Context) {
	evs, ok := s.accept(c, func(body []byte, who ingest.Caller, now time.Time) ([]ingest.Event, error) {
		ev, err := ingest.DecodeProgress(body, who, now)
		return []ingest.Event{ev}, err
	})
	if !ok {
		return
	}
	var first, paused bool
	if s.cfg.History != nil {
		first, paused = s.touch(c, evs[0].UserID)
	}
	i := 0
	if first {
		i |= 2
	}
	if paused {
		i |= 1
	}
	writeJSON(c, http.StatusAccepted, progressReplies[i])
}

// postEvents is POST /v1/events: a batch, all or nothing. The caller's day
// is touched once when the batch holds a play or progress event of the
// caller's own (events a service posts for other users do not touch them:
// first_today is only ever reported to the user's own app).
func (s *Server) postEvents(c *gin.Context) {
	cl, _ := ClaimsFrom(c)
	evs, ok := s.accept(c, decodeBatch)
	if !ok {
		return
	}
	if s.cfg.History != nil {
		for i := range evs {
			if t := evs[i].Type; (t == ingest.TypeProgress || t == ingest.TypePlay) && evs[i].UserID == cl.UserID {
				s.touch(c, cl.UserID)
				break
			}
		}
	}
	b := make([]byte, 0, 32)
	b = append(b, `{"accepted":`...)
	b = strconv.AppendInt(b, int64(len(evs)), 10)
	writeJSON(c, http.StatusAccepted, append(b, '}', '\n'))
}

// decodeBatch is ingest.DecodeBatch without what a user may not post
// here, each refused naming events[i].type, and then nothing is accepted:
//   - a danmaku: a user sends one with POST /v1/rooms/{id}/danmaku, where
//     the blocked words, the room check and the danmaku rate apply (issue
//     26: a danmaku posted here skipped them all);
//   - a gift: a gift exists only if it was paid for (POST
//     /v1/rooms/{id}/gifts; issue 24: a plain token minted gifts of any
//     value here).
//
// A service token (a trusted backend: an importer, `onair seed`'s history)
// may still post both; onair wallet reconcile counts only paid gifts'
// events ("wt<id>").
func decodeBatch(body []byte, who ingest.Caller, now time.Time) ([]ingest.Event, error) {
	evs, err := ingest.DecodeBatch(body, who, now)
	if err != nil || who.Service {
		return evs, err
	}
	var bad []*refusal.Error
	for i := range evs {
		switch evs[i].Type {
		case ingest.TypeDanmaku:
			bad = append(bad, refusal.Invalidf("events["+strconv.Itoa(i)+"].type",
				"danmaku is not posted here: send it with POST /v1/rooms/{id}/danmaku, which applies the room's rules"))
		case ingest.TypeGift:
			bad = append(bad, refusal.Invalidf("events["+strconv.Itoa(i)+"].type", "gifts are paid for: POST /v1/rooms/{id}/gifts"))
		}
	}
	if len(bad) > 0 {
		return nil, refusal.Batch(bad)
	}
	return evs, nil
}

func (s *Server) touch(c *gin.Context, uid uint64) (first, paused bool) {
	now := s.now()
	today, fresh, paused, epoch := s.touched.get(uid, now)
	if fresh {
		return false, paused
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), touchTimeout)
	defer cancel()
	var err error
	if today {
		// already touched today by this node: only the pause flag is stale
		paused, err = s.cfg.History.PauseFlag(ctx, uid)
	} else {
		first, paused, err = s.cfg.History.Touch(ctx, uid, now)
	}
	if err != nil {
		s.countDegraded(c, "touch_failed")
		// While Redis is down every event fails here: log a sample, the
		// counter has the rate.
		if sampleDue(&s.touchLogged) {
			s.log.Warn("history touch failed; events accepted with first_today false", "user", uid, "err", err)
		}
		return false, false
	}
	s.touched.put(uid, now, paused, epoch)
	return first, paused
}

// sampleDue reports whether a failure that repeats with every request
// should be logged now: once per logSample, last holding when it last was
// (unix ns). Its metric counts every occurrence.
func sampleDue(last *atomic.Int64) bool {
	now, prev := time.Now().UnixNano(), last.Load()
	return now-prev > int64(logSample) && last.CompareAndSwap(prev, now)
}

const logSample = 5 * time.Second

// accept reads the body, decodes it and produces the events; 202 is then up
// to the caller. On any failure it has written the error reply and returns
// false.
func (s *Server) accept(c *gin.Context, decode func([]byte, ingest.Caller, time.Time) ([]ingest.Event, error)) ([]ingest.Event, bool) {
	cl, _ := ClaimsFrom(c)
	body, e := readBody(c, ingest.MaxBodyBytes)
	if e != nil {
		WriteError(c, e)
		return nil, false
	}
	evs, err := decode(*body, caller(cl), s.now())
	putBody(body)
	if err != nil {
		WriteError(c, s.decodeError(c, err))
		return nil, false
	}
	if !s.spend(c, cl, len(evs)) {
		return nil, false
	}
	if err := s.cfg.Producer.Produce(c.Request.Context(), evs); err != nil {
		WriteError(c, s.produceError(c, err, len(evs)))
		return nil, false
	}
	return evs, true
}

// spend takes n events from the caller's event budget (a user's or a
// service token's); false when it has written the 429. A budget Redis
// cannot decide lets the events through, counted (ratelimit_failed).
func (s *Server) spend(c *gin.Context, cl Claims, n int) bool {
	b := s.events
	if cl.Role == RoleService {
		b = s.serviceEvents
	}
	if b == nil {
		return true
	}
	retry, err := b.take(c.Request.Context(), cl.UserID, n, s.now)
	switch {
	case err != nil && c.Request.Context().Err() != nil:
		c.Abort() // the client is gone
		return false
	case err != nil:
		s.limiterFailed(c, b, cl.UserID, err)
	case retry > 0:
		s.tooMany(c, b, retry, n)
		return false
	}
	return true
}

func caller(cl Claims) ingest.Caller {
	return ingest.Caller{UserID: cl.UserID, Service: cl.Role == RoleService}
}

// decodeError answers the ingest decoders' refusals as they are: every
// bad event's first bad field (400, the first one in "error" and all of
// them in "errors"), too large (413), another user's user_id (403).
// Anything else is a bug (500).
func (s *Server) decodeError(c *gin.Context, err error) *refusal.Error {
	if e, ok := refusal.As(err); ok {
		return e
	}
	s.log.Error("ingest: unexpected decode error", "route", c.FullPath(), "err", err)
	return refusal.InternalFor("decode_failed")
}

// produceError: Kafka could not take the events (or the client left before
// it did) → 503, so the app retries with the same event ids; anything else
// is a bug → 500. Either way none of the events was acknowledged.
func (s *Server) produceError(c *gin.Context, err error, n int) *refusal.Error {
	if errors.Is(err, ingest.ErrUnavailable) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// Kafka may still deliver records it had in flight when we gave up:
		// a 503 means "not known to be accepted", so clients retry with the
		// same event_id, which the aggregator counts once.
		return refusal.UnavailableFor("producer_unavailable", "events not acknowledged by Kafka within the timeout; retry with the same event_id")
	}
	s.log.Error("ingest: produce failed", "route", c.FullPath(), "events", n, "err", err)
	return refusal.InternalFor("produce_failed")
}
