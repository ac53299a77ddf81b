// Package apiclient is the small HTTP client of onair's API that onair's
// own tools share: the load tester and `onair seed` put catalogs and
// stations through the admin API and post event batches with it. It speaks
// JSON over plain net/http and imports nothing of onair's, so a client
// does not pull in the API server (gin) to talk to it.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Client sends requests to one onair API with one token. It is a value:
// copy it (WithToken) to act as someone else.
type Client struct {
	// Base is the API's URL without a trailing slash, e.g.
	// "http://127.0.0.1:8080".
	Base string
	// Token is the bearer token sent with every request; "" sends no
	// Authorization header.
	Token string
	// HTTP sends the requests; nil means http.DefaultClient (no timeout:
	// give one, or bound ctx).
	HTTP *http.Client
}

// WithToken returns a copy of c that sends tok.
func (c Client) WithToken(tok string) Client {
	c.Token = tok
	return c
}

// StatusError is a reply outside 2xx. Callers branch on Status (seed skips
// a route that answers 404 or 405: the feature is not in that build).
type StatusError struct {
	Method, Path string
	// Status is the HTTP status code.
	Status int
	// Body is the start of the reply (at most 512 bytes), trimmed: the
	// API's error object says why.
	Body string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, http.StatusText(e.Status), e.Body)
}

// maxErrorBody is how much of a refusal StatusError keeps.
const maxErrorBody = 512

// Do sends body as JSON (nil: no body) and, on a 2xx reply, decodes it
// into out (nil: the reply is discarded). Any other reply is a
// *StatusError; a transport failure is returned as it is, wrapped with the
// method and path.
func (c Client) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: cannot encode the body: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	resp, err := c.send(ctx, method, path, rd)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return statusError(method, path, resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body) // so the connection is reused
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: cannot decode the %d reply: %w", method, path, resp.StatusCode, err)
	}
	return nil
}

// PutCatalog is PUT /v1/admin/catalog with items (a slice of catalog
// items, as docs/api.md describes them). It needs an admin token.
func (c Client) PutCatalog(ctx context.Context, items any) error {
	return c.Do(ctx, http.MethodPut, "/v1/admin/catalog", map[string]any{"items": items}, nil)
}

// PutStation is PUT /v1/admin/stations/{id} with station. It needs an
// admin token.
func (c Client) PutStation(ctx context.Context, id uint64, station any) error {
	return c.Do(ctx, http.MethodPut, "/v1/admin/stations/"+strconv.FormatUint(id, 10), station, nil)
}

// maxRetries is how often PostEvents sends a batch again.
const maxRetries = 5

// PostEvents posts one batch of events (body: {"events": [...]}, already
// encoded: the callers build it once per batch) and returns when the API
// accepted it (202). What the server asks to be retried (429, 503,
// transport errors) it sends again, at most 5 times, after Retry-After
// (capped at 5 s) or a doubling pause; event ids make the retries
// idempotent. retries is how many times it sent the batch again.
func (c Client) PostEvents(ctx context.Context, body []byte) (retries int, err error) {
	const method, path = http.MethodPost, "/v1/events"
	for attempt := 0; ; attempt++ {
		wait := time.Duration(100<<attempt) * time.Millisecond
		resp, err := c.send(ctx, method, path, bytes.NewReader(body))
		if err == nil {
			switch resp.StatusCode {
			case http.StatusAccepted:
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return attempt, nil
			case http.StatusTooManyRequests, http.StatusServiceUnavailable:
				if ra, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && ra > 0 {
					wait = time.Duration(min(ra, 5)) * time.Second
				}
				err = statusError(method, path, resp)
				resp.Body.Close()
			default:
				err = statusError(method, path, resp)
				resp.Body.Close()
				return attempt, err
			}
		}
		if attempt == maxRetries || ctx.Err() != nil {
			return attempt, err
		}
		select {
		case <-ctx.Done():
			return attempt, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// send makes one request; the caller closes the reply's body.
func (c Client) send(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, body)
	if err != nil {
		return nil, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return resp, nil
}

// statusError reads the start of a refusal into a *StatusError.
func statusError(method, path string, resp *http.Response) error {
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return &StatusError{Method: method, Path: path, Status: resp.StatusCode, Body: string(bytes.TrimSpace(msg))}
}
