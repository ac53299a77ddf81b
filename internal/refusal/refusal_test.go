package refusal

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"
)

func TestWrite(t *testing.T) {
	f := func(e *Error, status int, retryAfter, body string) {
		t.Helper()
		w := httptest.NewRecorder()
		Write(w, e)
		if w.Code != status || w.Header().Get("Retry-After") != retryAfter || w.Body.String() != body {
			t.Fatalf("Write(%+v) = %d, Retry-After %q, %s; want %d, %q, %s", e, w.Code, w.Header().Get("Retry-After"), w.Body, status, retryAfter, body)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Fatalf("Content-Type %q", ct)
		}
		if (e.Kind == Unauthenticated) != (w.Header().Get("WWW-Authenticate") != "") {
			t.Fatalf("WWW-Authenticate %q on a %d", w.Header().Get("WWW-Authenticate"), status)
		}
	}
	f(Invalidf("limit", "must be <= %d", 100), 400, "", `{"error":{"code":"invalid_argument","message":"must be \u003c= 100","field":"limit"}}`+"\n")
	f(&Error{Kind: Unauthenticated, Message: "missing bearer token"}, 401, "", `{"error":{"code":"unauthenticated","message":"missing bearer token"}}`+"\n")
	f(&Error{Kind: Conflict, Field: "room_a", Message: "in a PK"}, 409, "", `{"error":{"code":"failed_precondition","message":"in a PK","field":"room_a"}}`+"\n")
	f(&Error{Kind: RateLimited, Message: "slow down", RetryAfterMs: 1001}, 429, "2", `{"error":{"code":"rate_limited","message":"slow down"}}`+"\n")
	f(UnavailableFor("redis", "retry"), 503, "1", `{"error":{"code":"unavailable","message":"retry"}}`+"\n")
	f(&Error{Message: "no kind"}, 500, "", `{"error":{"code":"internal","message":"no kind"}}`+"\n")
	f(Batch([]*Error{Invalidf("events[0].ts", "is required"), Invalidf("events[2]", "must be an object")}), 400, "",
		`{"error":{"code":"invalid_argument","message":"is required","field":"events[0].ts"},"errors":[`+
			`{"code":"invalid_argument","field":"events[0].ts","message":"is required"},`+
			`{"code":"invalid_argument","field":"events[2]","message":"must be an object"}]}`+"\n")
}

// TestKinds: every kind has its own status and code, and a sentinel
// survives wrapping.
func TestKinds(t *testing.T) {
	seen := map[int]Kind{}
	for k := Invalid; k <= Internal; k++ {
		if k.Code() == "" || (k != Internal && k.Code() == CodeInternal) {
			t.Fatalf("kind %d has code %q", k, k.Code())
		}
		if o, ok := seen[k.Status()]; ok {
			t.Fatalf("kinds %d and %d share status %d", o, k, k.Status())
		}
		seen[k.Status()] = k
	}
	if Kind(200).Status() != 500 {
		t.Fatalf("an unknown kind answers %d, want 500", Kind(200).Status())
	}
	sentinel := Invalidf("cursor", "malformed cursor")
	err := fmt.Errorf("page 3: %w", sentinel)
	if e, ok := As(err); !ok || e != sentinel || !errors.Is(err, sentinel) {
		t.Fatalf("As(%v) = %v, %v", err, e, ok)
	}
	if got := Batch(nil); got != nil {
		t.Fatalf("Batch(nil) = %v", got)
	}
}
