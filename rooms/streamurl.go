package rooms

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// StreamURLs makes a room's signed, expiring stream URLs (api.md
// "Accounts, anchors and rooms"): the template with {stream} replaced by
// the room's stream name, then "expires=<unix s>&sign=<hex>" appended to
// its query, where sign = hex(HMAC-SHA256(Key, stream + expires)) with
// expires in decimal. A media server holding Key checks a URL with the
// same rule (Verify).
type StreamURLs struct {
	// Push is the anchor's (publishing) URL template; "" = no push_url.
	Push string
	// Play is the viewers' URL template; "" = no play_url.
	Play string
	// Key signs the URLs. Empty = URLs are not made (no push_url or play_url).
	Key []byte
	// TTL is how long a URL stays valid; 0 = 1 hour.
	TTL time.Duration
}

// DefaultStreamTTL is StreamURLs.TTL's default.
const DefaultStreamTTL = time.Hour

// StreamName is the stream of a room in the templates' {stream}.
func StreamName(room uint64) string { return "room" + strconv.FormatUint(room, 10) }

// Sign returns the signature of stream valid until expires (unix s).
func Sign(key []byte, stream string, expires int64) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(stream))
	m.Write([]byte(strconv.FormatInt(expires, 10)))
	return hex.EncodeToString(m.Sum(nil))
}

// url fills tmpl for stream, signed until now+TTL; "" when tmpl or Key is.
func (s StreamURLs) url(tmpl, stream string, now time.Time) string {
	if tmpl == "" || len(s.Key) == 0 {
		return ""
	}
	ttl := s.TTL
	if ttl <= 0 {
		ttl = DefaultStreamTTL
	}
	exp := now.Add(ttl).Unix()
	sep := "?"
	if strings.Contains(tmpl, "?") {
		sep = "&"
	}
	return strings.ReplaceAll(tmpl, "{stream}", stream) + sep + "expires=" + strconv.FormatInt(exp, 10) + "&sign=" + Sign(s.Key, stream, exp)
}

// Errors of Verify.
var (
	ErrStreamExpired = errors.New("stream url expired")
	ErrStreamSign    = errors.New("stream url signature does not match")
)

// Verify checks a stream URL made for stream: its expires is not past at
// now and its sign matches (compared in constant time).
func Verify(key []byte, stream, rawURL string, now time.Time) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	q := u.Query()
	exp, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	if err != nil {
		return ErrStreamSign
	}
	if !hmac.Equal([]byte(q.Get("sign")), []byte(Sign(key, stream, exp))) {
		return ErrStreamSign
	}
	if now.Unix() > exp {
		return ErrStreamExpired
	}
	return nil
}
