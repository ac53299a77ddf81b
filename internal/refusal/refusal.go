// Package refusal is the one error type every domain package returns when
// it refuses a request for a reason the caller can act on (bad input naming
// a field, a missing room, a busy PK, a rate limit). The HTTP edge (package
// api) and the WebSocket gateway (package push) map a Kind to one status
// and one JSON body, in one place.
package refusal

import (
	"errors"
	"fmt"
)

// Kind classifies a refusal; each maps to one HTTP status and one error code.
type Kind uint8

// Refusal kinds.
const (
	Invalid         Kind = iota + 1 // bad input naming Field: 400 invalid_argument
	Unauthenticated                 // no or bad credentials: 401 unauthenticated
	Forbidden                       // signed in but not allowed: 403 permission_denied
	NotFound                        // no such resource: 404 not_found
	Conflict                        // the resource's state forbids it: 409 conflict
	TooLarge                        // a body or batch past its bound: 413 payload_too_large
	RateLimited                     // too often: 429 rate_limited
)

// Error is a refusal. Field names the input at fault ("limit",
// "events[3].ts", "room_b"), when one is.
type Error struct {
	Kind    Kind
	Field   string
	Message string
	// RetryAfterMs is set on RateLimited: when the caller may try again.
	RetryAfterMs int64
	// Details lists every bad entry of a batch (one per entry, in order),
	// when the refusal is about several inputs at once.
	Details []*Error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// New returns a refusal of kind naming field; the message is formatted.
func New(kind Kind, field, format string, args ...any) *Error {
	return &Error{Kind: kind, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Invalidf returns an Invalid refusal naming field.
func Invalidf(field, format string, args ...any) *Error {
	return New(Invalid, field, format, args...)
}

// As returns the refusal in err's chain, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
