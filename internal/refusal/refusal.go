// Package refusal is the one error type every domain package returns when
// it refuses a request for a reason the caller can act on (bad input naming
// a field, a missing room, a busy PK, a rate limit), and the one writer of
// api.md's JSON error body. The HTTP edge (package api) and the WebSocket
// gateway (package push, which must not import api) both answer with
// Write, so a Kind maps to one status and one code in one place.
package refusal

import (
	"errors"
	"fmt"
	"strings"
)

// Kind classifies a refusal; each maps to one HTTP status and one error code.
type Kind uint8

// Refusal kinds. The values are not on the wire (the code is); new kinds
// go at the end so branches that already name these keep their meaning.
const (
	Invalid           Kind = iota + 1 // bad input naming Field: 400 invalid_argument
	Unauthenticated                   // no or bad credentials: 401 unauthenticated
	Forbidden                         // signed in but not allowed: 403 permission_denied
	NotFound                          // no such resource: 404 not_found
	Conflict                          // the resource's state forbids it: 409 failed_precondition
	TooLarge                          // a body or batch past its bound: 413 payload_too_large
	RateLimited                       // too often: 429 rate_limited
	MethodNotAllowed                  // the route exists for other methods: 405 method_not_allowed
	Unavailable                       // a dependency did not answer, retry: 503 unavailable
	Internal                          // a bug on our side: 500 internal
	InsufficientFunds                 // a wallet short of coins: 402 insufficient_funds
)

// Error codes of the JSON error body, as listed in api.md. Clients branch
// on the code (and the field), never on the message.
const (
	CodeInvalidArgument    = "invalid_argument"
	CodeUnauthenticated    = "unauthenticated"
	CodePermissionDenied   = "permission_denied"
	CodeNotFound           = "not_found"
	CodeMethodNotAllowed   = "method_not_allowed" // gin's router; not in api.md's list
	CodeFailedPrecondition = "failed_precondition"
	CodePayloadTooLarge    = "payload_too_large"
	CodeRateLimited        = "rate_limited"
	CodeUnavailable        = "unavailable"
	CodeInternal           = "internal"
	CodeInsufficientFunds  = "insufficient_funds"
)

// kinds is the one Kind → (status, code) table. Index 0 (a zero Kind, a
// refusal built without one) answers as internal: a bug, not the caller's
// fault.
var kinds = [...]struct {
	status int
	code   string
}{
	0:                 {500, CodeInternal},
	Invalid:           {400, CodeInvalidArgument},
	Unauthenticated:   {401, CodeUnauthenticated},
	Forbidden:         {403, CodePermissionDenied},
	NotFound:          {404, CodeNotFound},
	Conflict:          {409, CodeFailedPrecondition},
	TooLarge:          {413, CodePayloadTooLarge},
	RateLimited:       {429, CodeRateLimited},
	MethodNotAllowed:  {405, CodeMethodNotAllowed},
	Unavailable:       {503, CodeUnavailable},
	Internal:          {500, CodeInternal},
	InsufficientFunds: {402, CodeInsufficientFunds},
}

func (k Kind) row() int {
	if int(k) >= len(kinds) {
		return 0
	}
	return int(k)
}

// Status is k's HTTP status.
func (k Kind) Status() int { return kinds[k.row()].status }

// Code is k's error code, the "code" of the JSON body.
func (k Kind) Code() string { return kinds[k.row()].code }

// Error is a refusal. Field names the input at fault ("limit",
// "events[3].ts", "room_b"), when one is.
type Error struct {
	Kind    Kind
	Field   string
	Message string
	// RetryAfterMs, when > 0, is when the caller may try again; it is sent
	// as Retry-After in whole seconds, rounded up.
	RetryAfterMs int64
	// Details lists every bad entry of a batch (one per entry, in order),
	// when the refusal is about several inputs at once. It is rendered as
	// the top-level "errors" array beside "error".
	Details []*Error
	// Reason labels the refusal in the edge's error metrics
	// (onair_api_errors_total, onair_push_upgrades_total); "" = the code.
	// It lets one code (unavailable) say which dependency failed.
	Reason string
}

// Error implements error. A batch's refusal lists its first three
// entries, for logs.
func (e *Error) Error() string {
	if len(e.Details) < 2 {
		return e.one()
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d invalid field(s)", len(e.Details))
	for i, d := range e.Details {
		if i == 3 {
			fmt.Fprintf(&sb, "; and %d more", len(e.Details)-i)
			break
		}
		sb.WriteString("; ")
		sb.WriteString(d.one())
	}
	return sb.String()
}

func (e *Error) one() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// Status is the HTTP status of e's kind.
func (e *Error) Status() int { return e.Kind.Status() }

// Code is the error code of e's kind.
func (e *Error) Code() string { return e.Kind.Code() }

// Label is e's metrics label: Reason, else the code.
func (e *Error) Label() string {
	if e.Reason != "" {
		return e.Reason
	}
	return e.Code()
}

// New returns a refusal of kind naming field; the message is formatted.
func New(kind Kind, field, format string, args ...any) *Error {
	return &Error{Kind: kind, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Invalidf returns an Invalid refusal naming field.
func Invalidf(field, format string, args ...any) *Error {
	return New(Invalid, field, format, args...)
}

// Batch returns the refusal of a batch with several bad entries: the first
// is the "error" of the body, and all of them, in order, its "errors". It
// returns nil for none.
func Batch(entries []*Error) *Error {
	if len(entries) == 0 {
		return nil
	}
	e := *entries[0]
	e.Details = entries
	return &e
}

// UnavailableFor returns a 503 refusal: a dependency did not answer.
// reason names it (the metrics label); clients are told to retry in 1 s.
func UnavailableFor(reason, msg string) *Error {
	return &Error{Kind: Unavailable, Message: msg, Reason: reason, RetryAfterMs: 1000}
}

// InternalFor returns a 500 refusal labelled reason. The message goes to
// the client, so callers log the cause and this says only "internal error".
func InternalFor(reason string) *Error {
	return &Error{Kind: Internal, Message: "internal error", Reason: reason}
}

// As returns the refusal in err's chain, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
