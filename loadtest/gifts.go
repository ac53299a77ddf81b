package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/onair/onair/internal/apiclient"
	"github.com/onair/onair/internal/authtoken"
)

// The gifts load: Viewers users send paid gifts (POST /v1/rooms/{id}/gifts,
// a fresh event_id each) into one room, so every gift credits one anchor's
// income: the hot-anchor case. The run first opens the room as its anchor
// and recharges every viewer (1 000 000 coins each, one order per run), so
// no gift is refused for funds; every answer but 202 is a loss.

// GiftsConfig configures Gifts.
type GiftsConfig struct {
	RunConfig
	// Viewers is how many users send gifts, ids 1..Viewers.
	Viewers int
	// Room is the room gifted into (created for Anchor, who is made an approved anchor and opens it).
	Room, Anchor uint64
	// GiftID is the gift sent (the catalog's; 3 = heart, 10 coins).
	GiftID int
}

// Gifts runs cfg.Rounds attacks of paid gifts and returns each round's
// summary.
func Gifts(ctx context.Context, cfg GiftsConfig) ([]Summary, error) {
	cfg.setDefaults()
	v := cfg.RunConfig
	v.Scenario, v.Rounds = "batch", 0 // the checks of a run's flags; gifts is not a mix, its rounds need no baseline
	if err := v.validate(true); err != nil {
		return nil, err
	}
	if cfg.Viewers < 1 || cfg.Anchor == 0 || cfg.Anchor <= uint64(cfg.Viewers) {
		return nil, errors.New("gifts: --viewers >= 1 and --anchor > --viewers are required")
	}
	tokens, err := giftTokens(cfg)
	if err != nil {
		return nil, err
	}
	run := newRunID()
	if cfg.Room, err = prepareGifts(ctx, cfg, tokens, run); err != nil {
		return nil, err
	}
	var out []Summary
	for i := 1; i <= max(cfg.Rounds, 1); i++ {
		rcfg := cfg.RunConfig
		if cfg.ReportDir != "" {
			rcfg.ReportDir = filepath.Join(cfg.ReportDir, "round-"+strconv.Itoa(i))
		}
		s, err := attack(ctx, rcfg, "gifts", giftTargeter(cfg, tokens, run+"-"+strconv.Itoa(i)), newClient(cfg.Timeout, nil), nil)
		if err != nil {
			return out, err
		}
		out = append(out, s)
		if ctx.Err() != nil {
			break
		}
	}
	return out, nil
}

// giftTokens signs one token per viewer (index i = user i+1) and the
// anchor's last.
func giftTokens(cfg GiftsConfig) ([]string, error) {
	tokens := make([]string, cfg.Viewers+1)
	for i := range tokens {
		uid := uint64(i + 1)
		if i == cfg.Viewers {
			uid = cfg.Anchor
		}
		tok, err := authtoken.Sign(cfg.TokenSecret, uid, "", 2*time.Hour)
		if err != nil {
			return nil, err
		}
		tokens[i] = "Bearer " + tok
	}
	return tokens, nil
}

// prepareGifts makes --anchor an approved anchor (applying, approved with
// an admin token signed with the same secret), creates and opens their
// room, recharges every viewer, and returns the room's id.
func prepareGifts(ctx context.Context, cfg GiftsConfig, tokens []string, run string) (uint64, error) {
	hc := newClient(cfg.Timeout, nil)
	anchor := apiclient.Client{Base: cfg.Target, Token: tokens[cfg.Viewers][len("Bearer "):], HTTP: hc}
	adminTok, err := authtoken.Sign(cfg.TokenSecret, 1, "admin", time.Hour)
	if err != nil {
		return 0, err
	}
	admin := apiclient.Client{Base: cfg.Target, Token: adminTok, HTTP: hc}
	var room struct {
		RoomID uint64 `json:"room_id"`
	}
	err = anchor.Do(ctx, http.MethodPost, "/v1/anchor/apply", map[string]any{"reason": "load test"}, nil)
	if err == nil {
		err = admin.Do(ctx, http.MethodPost, "/v1/admin/anchors/"+strconv.FormatUint(cfg.Anchor, 10)+"/approve", nil, nil)
	}
	if err == nil {
		err = anchor.Do(ctx, http.MethodPost, "/v1/rooms", map[string]any{"title": "gift load test", "category": "test"}, &room)
	}
	if err == nil {
		err = anchor.Do(ctx, http.MethodPost, "/v1/rooms/"+strconv.FormatUint(room.RoomID, 10)+"/open", nil, nil)
	}
	if err != nil {
		return 0, fmt.Errorf("gifts: make the anchor's room: %w", err)
	}
	var next atomic.Int64
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < cfg.Viewers; i = int(next.Add(1)) - 1 {
				c := apiclient.Client{Base: cfg.Target, Token: tokens[i][len("Bearer "):], HTTP: hc}
				if err := c.Do(ctx, http.MethodPost, "/v1/wallet/recharge", map[string]any{"order_id": "lt-" + run, "coins": 1_000_000}, nil); err != nil {
					errs <- fmt.Errorf("gifts: recharge viewer %d: %w", i+1, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return room.RoomID, <-errs
}

// giftTargeter sends viewer after viewer (round robin) one gift each,
// with event ids unique to the round.
func giftTargeter(cfg GiftsConfig, tokens []string, round string) vegeta.Targeter {
	url := cfg.Target + "/v1/rooms/" + strconv.FormatUint(cfg.Room, 10) + "/gifts"
	var n atomic.Uint64
	return func(t *vegeta.Target) error {
		i := n.Add(1) - 1
		t.Method, t.URL = http.MethodPost, url
		t.Header = http.Header{"Authorization": {tokens[i%uint64(cfg.Viewers)]}, "Content-Type": {"application/json"}}
		t.Body = []byte(`{"gift_id":` + strconv.Itoa(cfg.GiftID) + `,"count":1,"event_id":"` + round + "-" + strconv.FormatUint(i, 36) + `"}`)
		return nil
	}
}

// giftsMain is `onair loadtest gifts`.
func giftsMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cfg GiftsConfig
	var secret string
	fs := newFlagSet("gifts", stderr)
	commonFlags(fs, &cfg.RunConfig)
	fs.StringVar(&cfg.Target, "target", DefaultTarget, "base URL of onair's HTTP API")
	fs.BoolVar(&cfg.AllowRemote, "allow-remote", false, "allow non-loopback targets (never on a shared network without asking)")
	fs.StringVar(&secret, "token-secret", "", "HS256 token secret (default $ONAIR_AUTH_SECRET, else "+SecretFile+")")
	fs.IntVar(&cfg.Viewers, "viewers", 1000, "viewers sending gifts, user ids 1..N")
	fs.Uint64Var(&cfg.Anchor, "anchor", 900_000, "the room's anchor (opens it; > --viewers)")
	fs.IntVar(&cfg.GiftID, "gift", 3, "gift id sent (the default catalog's 3 = heart, 10 coins)")
	fs.IntVar(&cfg.Rounds, "rounds", 3, "attacks, one after the other")
	fs.StringVar(&cfg.ReportDir, "report", "", "report directory (default var/loadtest/gifts-<time>)")
	if err := parseArgs(fs, args); err != nil {
		return usageErr(stderr, "gifts", err)
	}
	if cfg.ReportDir == "" {
		cfg.ReportDir = defaultReportDir("gifts")
	}
	cfg.Progress = stderr
	b, err := resolveSecret(secret, os.Getenv, os.ReadFile)
	if err != nil {
		return usageErr(stderr, "gifts", err)
	}
	cfg.TokenSecret = b
	cfg.Scenario = "gifts"
	rounds, err := Gifts(ctx, cfg)
	lost := false
	for i, s := range rounds {
		fmt.Fprintf(stdout, "round %d: %.0f gifts/s sent, %.0f ok/s, p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms, statuses %v\n",
			i+1, s.AchievedRate, s.Throughput, s.Latencies.P50, s.Latencies.P90, s.Latencies.P99, s.Latencies.Max, s.StatusCodes)
		lost = lost || s.Lost || s.Interrupted
	}
	return finish(stdout, stderr, cfg.ReportDir, err, lost, func() {})
}
