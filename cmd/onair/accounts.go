package main

import (
	"context"
	"time"

	"github.com/onair/onair/accounts"
)

// startAccounts builds the accounts service on a node with PostgreSQL
// (nil without: a node without --postgres-dsn names people by id only).
// Codes go to the SMS webhook when --sms-webhook-url is set; dev sign-in
// (onair dev, serve --dev-login) also answers them in the reply.
func startAccounts(ctx context.Context, d *deps) (*accounts.Service, error) {
	if d.pg == nil {
		return nil, nil
	}
	t0 := time.Now()
	cfg := d.cfg
	ac := accounts.Config{DB: d.pg, Secret: []byte(cfg.AuthSecret.reveal()), Redis: d.rdb, Prefix: cfg.RedisPrefix,
		DevCodes: cfg.Push.DevLogin, Registerer: d.reg, Log: d.log.With("component", "accounts")}
	if cfg.SMSWebhookURL != "" {
		ac.SMS = &accounts.WebhookSMS{URL: cfg.SMSWebhookURL}
	}
	if len(ac.Secret) == 0 { // an aggregate-only node: it only reads names
		ac.Secret = []byte("names-only")
	}
	svc, err := accounts.New(ctx, ac)
	if err != nil {
		return nil, err
	}
	if ac.SMS == nil && !ac.DevCodes && cfg.has("api") {
		d.log.Warn("no SMS gateway (--sms-webhook-url) and no --dev-login: POST /v1/auth/sms-code answers 503, nobody can sign in by SMS")
	}
	d.st.started("accounts", t0, func(context.Context) error { return nil })
	return svc, nil
}
