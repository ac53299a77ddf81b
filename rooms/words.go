package rooms

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/onair/onair/internal/refusal"
)

// wordsTTL is how long a node trusts its copy of the blocked words: an
// admin's change reaches every node within it (at once on the node that
// made it).
const wordsTTL = 2 * time.Second

// Limits of the blocked-words list.
const (
	MaxBlockedWords = 1000
	MaxWordLen      = 50
)

// wordCache is a node's copy of the blocked words, lower-cased.
type wordCache struct {
	mu      sync.Mutex
	words   []string
	fetched time.Time
}

func (b *Board) wordsKey() string { return b.cfg.Prefix + "{words}:blocked" }

// BlockedWords returns the admin-managed list, sorted.
func (b *Board) BlockedWords(ctx context.Context) ([]string, error) {
	ws, err := b.rdb.SMembers(ctx, b.wordsKey()).Result()
	if err != nil {
		b.m.failures.WithLabelValues("redis").Inc()
		return nil, unavailable("read blocked words", err)
	}
	sort.Strings(ws)
	return ws, nil
}

// SetBlockedWords replaces the list. Words are matched case-insensitively
// anywhere in a danmaku; each is 1..MaxWordLen characters after trimming.
func (b *Board) SetBlockedWords(ctx context.Context, words []string) ([]string, error) {
	if len(words) > MaxBlockedWords {
		return nil, refusal.Invalidf("words", "at most %d blocked words, got %d", MaxBlockedWords, len(words))
	}
	clean := make([]any, 0, len(words))
	for i, w := range words {
		w = strings.ToLower(strings.TrimSpace(w))
		if n := utf8.RuneCountInString(w); n == 0 || n > MaxWordLen {
			return nil, refusal.Invalidf("words["+strconv.Itoa(i)+"]", "a blocked word has 1 to %d characters", MaxWordLen)
		}
		clean = append(clean, w)
	}
	pipe := b.rdb.TxPipeline()
	pipe.Del(ctx, b.wordsKey())
	if len(clean) > 0 {
		pipe.SAdd(ctx, b.wordsKey(), clean...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		b.m.failures.WithLabelValues("redis").Inc()
		return nil, unavailable("write blocked words", err)
	}
	b.words.mu.Lock()
	b.words.fetched = time.Time{}
	b.words.mu.Unlock()
	return b.BlockedWords(ctx)
}

// Blocked returns the first blocked word in text, or "" (nicknames obey
// the danmaku list: accounts.BlockedWords).
func (b *Board) Blocked(ctx context.Context, text string) string { return b.blocked(ctx, text) }

// blocked returns the first blocked word in text, or "". When Redis cannot
// be read it keeps using the last copy it had (and says so in the log).
func (b *Board) blocked(ctx context.Context, text string) string {
	c := &b.words
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.fetched) > wordsTTL {
		ws, err := b.rdb.SMembers(ctx, b.wordsKey()).Result()
		if err != nil {
			b.m.failures.WithLabelValues("redis").Inc()
			b.log.Warn("cannot refresh blocked words; using the last copy", "words", len(c.words), "err", err)
		} else {
			c.words, c.fetched = ws, time.Now()
		}
	}
	lower := strings.ToLower(text)
	for _, w := range c.words {
		if strings.Contains(lower, w) {
			return w
		}
	}
	return ""
}
