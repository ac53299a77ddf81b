package accounts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// SMSSender sends a sign-in code to a phone. An error means the code may
// not have reached it: SendCode then forgets the code, so the user may ask
// again at once.
type SMSSender interface {
	Send(ctx context.Context, phone, code string) error
}

var _ SMSSender = (*WebhookSMS)(nil)

// WebhookSMS posts {"phone": "+86...", "code": "123456", "text": "..."} as
// JSON to an SMS gateway's webhook. A 2xx answer is success; a network
// error or a 5xx is tried again (Attempts in all, 200 ms then 400 ms
// apart); any other status is final. A retry after a timeout may send the
// SMS twice: the user gets the same code twice, which is harmless.
type WebhookSMS struct {
	// URL is the webhook. Required.
	URL string
	// Client makes the calls; nil = a client with Timeout.
	Client *http.Client
	// Timeout bounds each attempt; 0 = 3 s.
	Timeout time.Duration
	// Attempts is how many times a send is tried; 0 = 3.
	Attempts int
}

// Send implements SMSSender.
func (w *WebhookSMS) Send(ctx context.Context, phone, code string) error {
	if w.URL == "" {
		return errors.New("sms webhook: no URL")
	}
	timeout := w.Timeout
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	client := w.Client
	if client == nil {
		client = &http.Client{Timeout: timeout}
	}
	attempts := max(w.Attempts, 1)
	if w.Attempts == 0 {
		attempts = 3
	}
	body, err := json.Marshal(map[string]string{"phone": phone, "code": code,
		"text": "Your onair sign-in code is " + code + ". It expires in 5 minutes."})
	if err != nil {
		return err
	}
	backoff := 200 * time.Millisecond
	for i := 1; ; i++ {
		retry, err := w.post(ctx, client, timeout, body)
		if err == nil {
			return nil
		}
		if !retry || i >= attempts {
			return fmt.Errorf("sms webhook: attempt %d of %d: %w", i, attempts, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sms webhook: attempt %d of %d: %w (then %w)", i, attempts, err, ctx.Err())
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

// post makes one attempt; retry says whether another may succeed.
func (w *WebhookSMS) post(ctx context.Context, client *http.Client, timeout time.Duration, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return true, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode/100 == 2:
		return false, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return true, fmt.Errorf("gateway answered %s", resp.Status)
	}
	return false, fmt.Errorf("gateway refused: %s", resp.Status)
}
