package api

import (
	"fmt"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// Error codes of the JSON error body, as listed in api.md. Each maps to one
// HTTP status; clients branch on the code, not on the message.
const (
	CodeInvalidArgument  = "invalid_argument"   // 400
	CodeUnauthenticated  = "unauthenticated"    // 401
	CodePermissionDenied = "permission_denied"  // 403
	CodeNotFound         = "not_found"          // 404
	CodeMethodNotAllowed = "method_not_allowed" // 405 (gin's router; not in api.md's list)
	CodePayloadTooLarge  = "payload_too_large"  // 413
	CodeRateLimited      = "rate_limited"       // 429
	CodeUnavailable      = "unavailable"        // 503
	CodeInternal         = "internal"           // 500
)

// Error is an API error. Handlers build one and pass it to WriteError, which
// renders {"error": {"code": ..., "message": ..., "field": ...}}.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Code is one of the Code* constants.
	Code string
	// Message is for humans; it may change between releases.
	Message string
	// Field names the offending input ("events[3].ts", "limit"); "" = none.
	Field string
	// Reason is the label of onair_api_errors_total; "" = Code. It lets one
	// code (unavailable) say which dependency failed (producer, history, ...).
	Reason string
	// Details, when set, are rendered as a top-level "errors" array beside
	// "error": one entry per bad input (a batch with several bad events).
	Details []FieldError
	// RetryAfter, when > 0, is sent as the Retry-After header in seconds.
	RetryAfter int
}

// FieldError is one entry of the "errors" array of a 400 reply.
type FieldError struct {
	Field   string
	Message string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Field != "" {
		return e.Code + ": " + e.Field + ": " + e.Message
	}
	return e.Code + ": " + e.Message
}

// BadRequest returns a 400 invalid_argument error naming field.
func BadRequest(field, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidArgument, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Unauthenticated returns a 401 error.
func Unauthenticated(msg string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Message: msg}
}

// PermissionDenied returns a 403 error.
func PermissionDenied(msg string) *Error {
	return &Error{Status: http.StatusForbidden, Code: CodePermissionDenied, Message: msg}
}

// NotFound returns a 404 error.
func NotFound(msg string) *Error {
	return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: msg}
}

// Unavailable returns a 503 error; reason says which dependency failed and
// becomes the onair_api_errors_total label. Clients are told to retry in 1 s.
func Unavailable(reason, msg string) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: msg, Reason: reason, RetryAfter: 1}
}

// Internal returns a 500 error. The message goes to the client, so callers
// log the cause and pass a generic message.
func Internal(reason string) *Error {
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error", Reason: reason}
}

// errKey is the gin context key under which WriteError leaves the error, so
// the observing middleware can label onair_api_errors_total and log it.
const errKey = "onair.api.error"

// WriteError renders e as the JSON error body, sets its status and aborts the
// handler chain. Metrics and logs are done by the server's middleware, once
// per request, from what WriteError leaves in the context.
func WriteError(c *gin.Context, e *Error) {
	c.Set(errKey, e)
	h := c.Writer.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	if e.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="onair"`)
	}
	c.AbortWithStatus(e.Status)
	_, _ = c.Writer.Write(appendErrorJSON(make([]byte, 0, 128), e))
}

func appendErrorJSON(b []byte, e *Error) []byte {
	b = append(b, `{"error":{"code":`...)
	b = appendString(b, e.Code)
	b = append(b, `,"message":`...)
	b = appendString(b, e.Message)
	if e.Field != "" {
		b = append(b, `,"field":`...)
		b = appendString(b, e.Field)
	}
	b = append(b, '}')
	if len(e.Details) > 0 {
		b = append(b, `,"errors":[`...)
		for i, d := range e.Details {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"code":"invalid_argument","field":`...)
			b = appendString(b, d.Field)
			b = append(b, `,"message":`...)
			b = appendString(b, d.Message)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}', '\n')
}

// errorFrom returns the *Error WriteError left in c, if any.
func errorFrom(c *gin.Context) *Error {
	if v, ok := c.Get(errKey); ok {
		e, _ := v.(*Error)
		return e
	}
	return nil
}

// writeJSON writes a pre-encoded JSON body with status.
func writeJSON(c *gin.Context, status int, body []byte) {
	h := c.Writer.Header()
	// one shared, never modified value slice, as gin's renderers do
	h["Content-Type"] = jsonContentType
	// net/http counts a body that fits its 2 KiB buffer itself; a known
	// length saves larger ones (history pages) chunked encoding and its
	// extra writes.
	if len(body) > 2048 {
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
	}
	c.Writer.WriteHeader(status)
	_, _ = c.Writer.Write(body)
}

var jsonContentType = []string{"application/json; charset=utf-8"}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, like encoding/json: HTML
// characters escaped, invalid UTF-8 replaced by U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		ch := s[i]
		if ch >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, s[start:i]...)
				b = append(b, `\ufffd`...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		if ch >= 0x20 && ch != '"' && ch != '\\' && ch != '<' && ch != '>' && ch != '&' {
			i++
			continue
		}
		b = append(b, s[start:i]...)
		switch ch {
		case '"', '\\':
			b = append(b, '\\', ch)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[ch>>4], hexDigits[ch&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
