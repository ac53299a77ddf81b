package rooms

import (
	"errors"
	"fmt"
)

// Kind classifies an Error; the HTTP layer maps each to one status.
type Kind uint8

// Error kinds.
const (
	Invalid     Kind = iota + 1 // bad input: 400
	Forbidden                   // not the room's anchor nor admin: 403
	NotFound                    // no such room: 404
	Conflict                    // room closed, PK busy: 409
	RateLimited                 // danmaku too fast: 429
)

// Error is a refusal the caller can act on. Field names the input at
// fault ("text", "room_b"), when one is.
type Error struct {
	Kind    Kind
	Field   string
	Message string
	// RetryAfterMs is set on RateLimited.
	RetryAfterMs int64
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

func invalid(field, format string, args ...any) *Error {
	return &Error{Kind: Invalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrNoProducer is returned by Danmaku and Gift on a Board without Events.
var ErrNoProducer = errors.New("board: no events producer configured")

// ErrUnavailable wraps failures of Redis or Kafka: nothing was accepted.
var ErrUnavailable = errors.New("board: dependency unavailable")

func unavailable(what string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
}
