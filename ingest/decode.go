package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/onair/onair/internal/refusal"
)

// Limits from api.md ("Events in").
const (
	// MaxBatchEvents is the most events one POST /v1/events may carry.
	MaxBatchEvents = 1000
	// MaxBodyBytes is the largest request body accepted (1 MiB). The HTTP
	// layer should cap its read at MaxBodyBytes+1 so that the decoders can
	// tell "too large" from "exactly at the limit".
	MaxBodyBytes = 1 << 20

	maxIDLen     = 64  // event_id and device, in bytes
	maxTextBytes = 500 // danmaku text, in bytes of UTF-8

	maxFuture = 5 * time.Minute
	maxAge    = 30 * 24 * time.Hour
)

// Caller is who posts: the token's user id, and whether it is a trusted
// service (role "service") that may post for any user.
type Caller struct {
	UserID  uint64
	Service bool
}

var (
	// ErrTooManyEvents is returned (wrapped) for a batch of more than
	// MaxBatchEvents events: a 413 naming "events".
	ErrTooManyEvents = &refusal.Error{Kind: refusal.TooLarge, Field: "events",
		Message: "a batch holds at most " + strconv.Itoa(MaxBatchEvents) + " events"}
	// ErrBodyTooLarge is returned (wrapped) for a body larger than
	// MaxBodyBytes: a 413.
	ErrBodyTooLarge = &refusal.Error{Kind: refusal.TooLarge,
		Message: "request body exceeds " + strconv.Itoa(MaxBodyBytes) + " bytes"}
	// errNoCaller is a wiring bug: the HTTP layer passed an unauthenticated
	// caller. It is not the client's fault, so it is not a refusal.
	errNoCaller = errors.New("ingest: caller has user id 0 and is not a service")
)

// DecodeProgress decodes the body of POST /v1/progress: one object with the
// fields of a progress event; "type" may be omitted and, if given, must be
// "progress". See DecodeBatch for the rules and the order of errors.
func DecodeProgress(body []byte, c Caller, now time.Time) (Event, error) {
	d, err := newDecoder(body, c, now)
	if err != nil {
		return Event{}, err
	}
	var e Event
	bad, err := d.event(&e, true)
	if err != nil {
		return Event{}, invalidJSON("", err)
	}
	if err := d.end(); err != nil {
		return Event{}, invalidJSON("", err)
	}
	if d.forbidden != nil {
		return Event{}, d.forbidden
	}
	if bad.field != "" {
		return Event{}, refusal.Batch([]*refusal.Error{refusal.Invalidf(bad.field, "%s", bad.msg)})
	}
	return e, nil
}

// DecodeBatch decodes the body of POST /v1/events, {"events": [...]}, all or
// nothing. Rules where api.md is silent (for the API docs):
//
//   - Unknown fields, at the top level and in events, are ignored so that
//     newer apps can talk to older servers. A known field set to null counts
//     as absent. Fields that do not apply to an event's type are dropped.
//   - Ids are JSON integers in 1..2^63-1: strings, floats (even 1.0), 0 and
//     negatives are rejected. *_ms fields are integers in 0..2^63-1; gift
//     "value" is in 1..2^63-1.
//   - progress: duration_ms is optional, 0 meaning unknown (live); when it is
//     positive, position_ms must not exceed it. play: listened_ms is required,
//     station_id optional; skip: station_id optional.
//   - event_id: "" counts as absent (the producer assigns one).
//   - user_id: a user token may omit it or give its own; a service token
//     must give it, because a service event with no user is a bug, and
//     filing it under the service's own id would pollute a fake user.
//
// Errors, in order of precedence: a body over MaxBodyBytes or more than
// MaxBatchEvents events (ErrBodyTooLarge, ErrTooManyEvents; 413) and
// malformed JSON (an Invalid refusal with the byte offset; 400), whichever
// is met first while scanning; then a Forbidden refusal naming the first
// user_id a user token may not post for (403); then an Invalid refusal
// listing every bad event in its Details (400). Every error but a wiring
// bug is a *refusal.Error.
func DecodeBatch(body []byte, c Caller, now time.Time) ([]Event, error) {
	d, err := newDecoder(body, c, now)
	if err != nil {
		return nil, err
	}
	s := &d.s
	if err := s.expect('{', "'{'"); err != nil {
		return nil, invalidJSON("", err)
	}
	var (
		evs       []Event
		errs      []*refusal.Error
		sawEvents bool
	)
	if s.peek() == '}' {
		s.i++
	} else {
		for {
			s.ws()
			key, err := s.str()
			if err != nil {
				return nil, invalidJSON("", err)
			}
			isEvents := string(key) == "events"
			if err := s.expect(':', "':'"); err != nil {
				return nil, invalidJSON("", err)
			}
			switch {
			case !isEvents:
				err = s.skip(1)
			case sawEvents:
				return nil, refusal.Batch([]*refusal.Error{refusal.Invalidf("events", "given more than once")})
			case s.peek() == 'n':
				sawEvents = true
				err = s.literal("null")
			case s.peek() != '[':
				sawEvents = true
				errs = append(errs, refusal.Invalidf("events", "must be an array, got %s", kindOf(s.peek())))
				err = s.skip(1)
			default:
				sawEvents = true
				evs, errs, err = d.events()
			}
			if err != nil {
				if errors.Is(err, ErrTooManyEvents) {
					return nil, err
				}
				return nil, invalidJSON("", err)
			}
			if s.peek() == ',' {
				s.i++
				continue
			}
			if err := s.expect('}', "',' or '}'"); err != nil {
				return nil, invalidJSON("", err)
			}
			break
		}
	}
	if err := d.end(); err != nil {
		return nil, invalidJSON("", err)
	}
	if d.forbidden != nil {
		return nil, d.forbidden
	}
	if len(errs) == 0 && len(evs) == 0 {
		errs = append(errs, refusal.Invalidf("events", "must hold at least one event"))
	}
	if len(errs) > 0 {
		return nil, refusal.Batch(errs)
	}
	return evs, nil
}

// events reads the array of a batch, s.i being at '['.
func (d *decoder) events() ([]Event, []*refusal.Error, error) {
	s := &d.s
	s.i++
	// An upper bound on the number of events without a second pass: every
	// event starts with '{'. Sizing once saves the append regrowths, which
	// cost more than the count (a vectorised scan).
	n := bytes.Count(s.b[s.i:], []byte{'{'})
	evs := make([]Event, 0, min(n, MaxBatchEvents))
	var errs []*refusal.Error
	if s.peek() == ']' {
		s.i++
		return evs, nil, nil
	}
	for i := 0; ; i++ {
		if i == MaxBatchEvents {
			return nil, nil, fmt.Errorf("%w: more than %d in the batch (%d bytes)", ErrTooManyEvents, MaxBatchEvents, len(s.b))
		}
		d.index = i
		if c := s.peek(); c != '{' {
			errs = append(errs, refusal.Invalidf("events["+strconv.Itoa(i)+"]", "must be an object, got %s", kindOf(c)))
			if err := s.skip(1); err != nil {
				return nil, nil, err
			}
		} else {
			evs = append(evs, Event{})
			bad, err := d.event(&evs[len(evs)-1], false)
			if err != nil {
				return nil, nil, err
			}
			if bad.field != "" {
				errs = append(errs, refusal.Invalidf(d.path(bad.field), "%s", bad.msg))
			}
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return evs, errs, nil
		default:
			return nil, nil, s.fail("expected ',' or ']'")
		}
	}
}

// invalidJSON turns a syntax error into the 400 the HTTP layer reports.
func invalidJSON(field string, err error) error {
	return refusal.Batch([]*refusal.Error{refusal.Invalidf(field, "%s", err.Error())})
}

type decoder struct {
	s            scanner
	c            Caller
	minTS, maxTS int64
	batch        bool
	index        int
	lastDevice   string // devices repeat across a batch: share one string
	forbidden    *refusal.Error
}

func newDecoder(body []byte, c Caller, now time.Time) (*decoder, error) {
	if len(body) > MaxBodyBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrBodyTooLarge, len(body), MaxBodyBytes)
	}
	if c.UserID == 0 && !c.Service {
		return nil, errNoCaller
	}
	return &decoder{
		s:     scanner{b: body},
		c:     c,
		minTS: now.Add(-maxAge).UnixMilli(),
		maxTS: now.Add(maxFuture).UnixMilli(),
	}, nil
}

// end checks that nothing but whitespace follows the top-level value.
func (d *decoder) end() error {
	if d.s.peek() != 0 || d.s.i < len(d.s.b) {
		return &syntaxError{Off: d.s.i, Msg: "unexpected data after the top-level value"}
	}
	return nil
}

// path names a field of the current event for a refusal. Only called on
// errors, so the allocation is off the hot path.
func (d *decoder) path(field string) string {
	if !d.batch {
		return field
	}
	return "events[" + strconv.Itoa(d.index) + "]." + field
}

// badField is an event's first validation failure; field is relative to the
// event ("ts"), "" when the event is valid.
type badField struct{ field, msg string }

// Presence bits of the fields parsed from one event.
const (
	hasType uint16 = 1 << iota
	hasUser
	hasBiz
	hasItem
	hasTS
	hasPosition
	hasDuration
	hasListened
	hasRoom
	hasAnchor
	hasGift
	hasValue
	hasText
)

// event reads one event object into e, s.i being at '{'. It returns the
// event's first bad field, or a syntax error that ends the whole decode.
// Type errors win over the others because they make the rest meaningless;
// then value errors in the order they appear; then missing fields.
func (d *decoder) event(e *Event, progress bool) (badField, error) {
	var r Event // everything given; e gets what applies to the type
	has, bad, err := d.fields(&r, progress)
	if err != nil || bad.field != "" {
		return bad, err
	}
	if bad := d.owner(&r, has); bad.field != "" {
		return bad, nil
	}
	*e = Event{Type: r.Type, UserID: r.UserID, TS: r.TS, EventID: r.EventID, Device: r.Device}
	if bad := typed(e, &r, has); bad.field != "" {
		return bad, nil
	}
	switch {
	case has&hasTS == 0:
		return badField{"ts", "is required"}, nil
	case r.TS > d.maxTS:
		return badField{"ts", fmt.Sprintf("%d is more than 5 minutes in the future (limit %d)", r.TS, d.maxTS)}, nil
	case r.TS < d.minTS:
		return badField{"ts", fmt.Sprintf("%d is more than 30 days old (limit %d)", r.TS, d.minTS)}, nil
	}
	return badField{}, nil
}

// fields reads the object's fields into r and has, returning the first
// bad field:
// a bad type first, then a missing type, then the first bad value.
func (d *decoder) fields(r *Event, progress bool) (has uint16, bad badField, err error) {
	s := &d.s
	d.batch = !progress
	if err := s.expect('{', "'{'"); err != nil {
		return 0, badField{}, err
	}
	var typeBad badField
	if progress {
		r.Type = TypeProgress
		has |= hasType
	}
	if s.peek() == '}' {
		s.i++
	} else {
		for {
			s.ws()
			key, err := s.str()
			if err != nil {
				return has, badField{}, err
			}
			// Switch before the next str call: key may alias s.buf.
			field := knownField(key)
			if err := s.expect(':', "':'"); err != nil {
				return has, badField{}, err
			}
			msg, err := d.field(r, &has, field, progress)
			if err != nil {
				return has, badField{}, err
			}
			switch {
			case msg == "":
			case field == "type":
				if typeBad.field == "" {
					typeBad = badField{field, msg}
				}
			case bad.field == "":
				bad = badField{field, msg}
			}
			if s.peek() == ',' {
				s.i++
				continue
			}
			if err := s.expect('}', "',' or '}'"); err != nil {
				return has, badField{}, err
			}
			break
		}
	}
	switch {
	case typeBad.field != "":
		return has, typeBad, nil
	case has&hasType == 0:
		return has, badField{"type", "is required"}, nil
	}
	return has, bad, nil
}

// field reads the value of one field into r, s.i being after its ':'. It
// returns what is wrong with the value, if anything, or a syntax error.
func (d *decoder) field(r *Event, has *uint16, field string, progress bool) (msg string, err error) {
	s := &d.s
	var v []byte
	switch {
	case field == "":
		err = s.skip(1)
	case s.peek() == 'n':
		err = s.literal("null") // known field set to null: absent
	case field == "type":
		if v, msg, err = d.str(0); err == nil && msg == "" {
			t, ok := parseTypeBytes(v)
			switch {
			case !ok:
				msg = "unknown event type " + quote(v) + "; want one of progress, play, skip, like, gift, danmaku"
			case progress && t != TypeProgress:
				msg = "must be \"progress\" on /v1/progress, got " + quote(v)
			default:
				r.Type, *has = t, *has|hasType
			}
		}
	case field == "biz":
		if v, msg, err = d.str(0); err == nil && msg == "" {
			if b, ok := parseBizBytes(v); ok {
				r.Biz, *has = b, *has|hasBiz
			} else {
				msg = "unknown biz " + quote(v) + "; want one of audio, video, live, article, comic, radio"
			}
		}
	case field == "ts":
		r.TS, msg, err = d.int()
		*has |= hasTS
	case field == "event_id":
		if v, msg, err = d.str(maxIDLen); err == nil && msg == "" {
			r.EventID = string(v)
		}
	case field == "device":
		if v, msg, err = d.str(maxIDLen); err == nil && msg == "" {
			if d.lastDevice != string(v) {
				d.lastDevice = string(v)
			}
			r.Device = d.lastDevice
		}
	case field == "text":
		if v, msg, err = d.str(maxTextBytes); err == nil && msg == "" {
			if len(v) == 0 {
				msg = "must be 1 to 500 bytes, got 0"
			} else {
				r.Text, *has = string(v), *has|hasText
			}
		}
	default: // a numeric field
		var n uint64
		n, msg, err = d.uint(field)
		if err == nil && msg == "" {
			*has |= d.setUint(r, field, n)
		}
	}
	return msg, err
}

// owner decides whom the event is for. The forbidden check is recorded,
// not returned: it becomes the whole request's 403 after the body has been
// scanned.
func (d *decoder) owner(r *Event, has uint16) badField {
	switch {
	case has&hasUser != 0 && !d.c.Service && r.UserID != d.c.UserID:
		if d.forbidden == nil {
			d.forbidden = refusal.New(refusal.Forbidden, d.path("user_id"), "user %d may not post events for user %d", d.c.UserID, r.UserID)
		}
	case has&hasUser == 0 && d.c.Service:
		return badField{"user_id", "is required with a service token"}
	case has&hasUser == 0:
		r.UserID = d.c.UserID
	}
	return badField{}
}

// typed copies into e the fields of r its type uses, and returns the first
// one the type requires that r lacks.
func typed(e, r *Event, has uint16) badField {
	need := func(bit uint16) bool { return has&bit != 0 }
	switch r.Type {
	case TypeProgress, TypePlay, TypeSkip, TypeLike:
		if !need(hasBiz) {
			return badField{"biz", "is required for " + r.Type.String() + " events"}
		}
		if !need(hasItem) {
			return badField{"item_id", "is required for " + r.Type.String() + " events"}
		}
		e.Biz, e.ItemID = r.Biz, r.ItemID
		switch r.Type {
		case TypeProgress:
			if !need(hasPosition) {
				return badField{"position_ms", "is required for progress events"}
			}
			if r.DurationMs > 0 && r.PositionMs > r.DurationMs {
				return badField{"position_ms", fmt.Sprintf("%d is beyond duration_ms %d", r.PositionMs, r.DurationMs)}
			}
			e.PositionMs, e.DurationMs = r.PositionMs, r.DurationMs
		case TypePlay:
			if !need(hasListened) {
				return badField{"listened_ms", "is required for play events"}
			}
			e.ListenedMs, e.StationID = r.ListenedMs, r.StationID
		case TypeSkip:
			e.StationID = r.StationID
		}
	case TypeGift:
		for _, f := range [...]struct {
			bit  uint16
			name string
		}{{hasRoom, "room_id"}, {hasAnchor, "anchor_id"}, {hasGift, "gift_id"}, {hasValue, "value"}} {
			if !need(f.bit) {
				return badField{f.name, "is required for gift events"}
			}
		}
		e.RoomID, e.AnchorID, e.GiftID, e.Value = r.RoomID, r.AnchorID, r.GiftID, r.Value
	case TypeDanmaku:
		if !need(hasRoom) {
			return badField{"room_id", "is required for danmaku events"}
		}
		if !need(hasText) {
			return badField{"text", "is required for danmaku events"}
		}
		e.RoomID, e.Text = r.RoomID, r.Text
	}
	return badField{}
}
