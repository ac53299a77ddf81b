package history

import (
	"encoding/base64"
	"strconv"
	"strings"
)

// cursor is the position after the last item of a page: the timeline score
// (ms) and member of that item. Pages are ordered by (score desc, member
// desc) in Redis and ClickHouse alike, and new plays only ever get scores
// above what a reader has seen, so paging on (score, member) neither repeats
// nor skips an item while new plays arrive. (An item played again while a
// reader pages moves to the top; if the reader had not reached it yet, it is
// skipped on this pass — it is on the first page now.)
type cursor struct {
	score  int64
	member string
}

// encode returns the opaque form: unpadded URL-safe base64 of "score:member".
func (c cursor) encode() string {
	var b [64]byte
	raw := strconv.AppendInt(b[:0], c.score, 10)
	raw = append(raw, ':')
	raw = append(raw, c.member...)
	return base64.RawURLEncoding.EncodeToString(raw)
}

// decodeCursor parses an encoded cursor; "" is the first page (zero cursor).
func decodeCursor(s string) (cursor, error) {
	if s == "" {
		return cursor{}, nil
	}
	if len(s) > 64 {
		return cursor{}, ErrBadCursor
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, ErrBadCursor
	}
	sc, m, ok := strings.Cut(string(raw), ":")
	n, err := strconv.ParseInt(sc, 10, 64)
	if !ok || err != nil || n <= 0 {
		return cursor{}, ErrBadCursor
	}
	if _, ok := parseMember(m); !ok {
		return cursor{}, ErrBadCursor
	}
	return cursor{score: n, member: m}, nil
}

// first reports whether c is the start of the timeline.
func (c cursor) first() bool { return c.member == "" }
