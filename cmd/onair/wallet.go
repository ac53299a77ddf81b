package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/onair/onair/api"
	"github.com/onair/onair/wallet"
)

// walletConfig holds the wallet's flags.
type walletConfig struct {
	Shards   int
	SharePct int
	Provider string
	Secret   secret
}

// flags registers the wallet's flags. The dev payment provider pays every
// recharge: any signed-in user could mint coins, so it is onair dev's
// default only; serve waits for the provider's signed callback unless told
// otherwise.
func (w *walletConfig) flags(fs *flag.FlagSet, c *config, dev bool) {
	provider := "webhook"
	if dev {
		provider = "dev"
	}
	fs.IntVar(&w.Shards, "wallet-shards", c.envInt("wallet-shards", wallet.DefaultShards), "sub-accounts an anchor's income and the platform are split over (hot anchors)")
	fs.IntVar(&w.SharePct, "wallet-share", c.envInt("wallet-share", wallet.DefaultSharePct), "anchor's share of a gift in percent (floored to the coin; the platform keeps the rest)")
	fs.StringVar(&w.Provider, "payment-provider", env("payment-provider", provider), "recharge payments: dev (always paid at once: anyone signed in mints coins; never in production) or webhook (paid when POST /v1/payments/callback confirms)")
	c.secretVar(fs, &w.Secret, "payment-secret", "HMAC-SHA256 `secret` of POST /v1/payments/callback bodies (empty = no callback route)")
}

func (w *walletConfig) provider() (wallet.PaymentProvider, error) {
	switch w.Provider {
	case "dev":
		return wallet.DevProvider{}, nil
	case "webhook":
		return wallet.WebhookProvider{}, nil
	}
	return nil, fmt.Errorf("--payment-provider: %q is not dev or webhook", w.Provider)
}

// startWallet mounts the wallet's routes on the api role and runs the
// outbox relay and the ledger's ClickHouse copy beside them (every api
// node runs both; advisory locks let one step of each run at a time across
// them). Paid gifts find their room's
// anchor in the rooms registry (rooms.Board.AnchorOf) until rooms live in
// PostgreSQL.
func startWallet(d *deps, c *core, srv *api.Server) error {
	if d.pg == nil {
		return errors.New("the api role needs PostgreSQL (--postgres-dsn) for the wallet")
	}
	t0 := time.Now()
	wc := &d.cfg.Wallet
	p, err := wc.provider()
	if err != nil {
		return err
	}
	if wc.Provider == "webhook" && wc.Secret == "" {
		d.log.Warn("--payment-provider webhook without --payment-secret: recharges stay pending, nothing can confirm them")
	}
	w, err := wallet.New(wallet.Config{DB: d.pg, Shards: wc.Shards, SharePct: wc.SharePct, Provider: p,
		Registerer: d.reg, Log: d.log.With("component", "wallet")})
	if err != nil {
		return err
	}
	if err := api.MountWallet(srv, api.WalletRoutes{Wallet: w, Anchors: c.rooms, Effects: c.rooms, CallbackSecret: []byte(wc.Secret.reveal())}); err != nil {
		return err
	}
	relay, err := wallet.NewRelay(wallet.RelayConfig{DB: d.pg, Events: c.prod, Registerer: d.reg, Log: d.log.With("component", "wallet-relay")})
	if err != nil {
		return err
	}
	d.st.startedRun("wallet relay", t0, func(ctx context.Context) error { return relay.Run(ctx) })
	t0 = time.Now()
	cp, err := wallet.NewCopier(wallet.CopyConfig{DB: d.pg, ClickHouse: d.ch, Database: d.cfg.CHDatabase,
		Registerer: d.reg, Log: d.log.With("component", "wallet-copy")})
	if err != nil {
		return err
	}
	d.st.startedRun("wallet ledger copy", t0, func(ctx context.Context) error { return cp.Run(ctx) })
	return nil
}
