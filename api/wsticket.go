package api

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/internal/refusal"
)

// WebSocket tickets: a browser cannot set headers on a WebSocket, so the
// upgrade is the one route that takes a credential in its URL, and URLs
// end up in proxy logs. POST /v1/ws/ticket (with the bearer token) hands
// out a ticket that opens one upgrade within TicketTTL; the page puts that
// in the URL instead of the long-lived token. A ticket is a Redis key
// (<prefix>wst:<ticket> → "<user>:<role>") taken with GETDEL, so it opens
// one upgrade on any node, once.

// TicketTTL is how long a WebSocket ticket stays valid.
const TicketTTL = 30 * time.Second

// ticketTimeout bounds the ticket's Redis round trips.
const ticketTimeout = time.Second

func (s *Server) ticketKey(t string) string { return s.cfg.RatePrefix + "wst:" + t }

// postTicket is POST /v1/ws/ticket.
func (s *Server) postTicket(c *gin.Context) {
	cl, _ := ClaimsFrom(c)
	var raw [24]byte
	_, _ = rand.Read(raw[:])
	t := base64.RawURLEncoding.EncodeToString(raw[:])
	ctx, cancel := context.WithTimeout(c.Request.Context(), ticketTimeout)
	err := s.cfg.Redis.Set(ctx, s.ticketKey(t), strconv.FormatUint(cl.UserID, 10)+":"+cl.Role, TicketTTL).Err()
	cancel()
	if err != nil {
		if sampleDue(&s.ticketLogged) {
			s.log.Warn("cannot store a WebSocket ticket", "user", cl.UserID, "err", err)
		}
		WriteError(c, refusal.UnavailableFor("redis", "tickets unavailable; retry"))
		return
	}
	b := make([]byte, 0, 96)
	b = append(b, `{"ticket":"`...)
	b = append(b, t...)
	b = append(b, `","expires_in":`...)
	b = strconv.AppendInt(b, int64(TicketTTL/time.Second), 10)
	writeJSON(c, http.StatusOK, append(b, '}', '\n'))
}

// errBadTicket: the ticket is unknown, used or expired.
var errBadTicket = errors.New("ticket unknown, used or expired")

// redeemTicket returns the claims a ticket was issued for and voids it.
func (s *Server) redeemTicket(ctx context.Context, t string) (Claims, error) {
	if s.cfg.Redis == nil || len(t) > 64 {
		return Claims{}, errBadTicket
	}
	ctx, cancel := context.WithTimeout(ctx, ticketTimeout)
	defer cancel()
	v, err := s.cfg.Redis.GetDel(ctx, s.ticketKey(t)).Result()
	if errors.Is(err, redis.Nil) {
		return Claims{}, errBadTicket
	}
	if err != nil {
		return Claims{}, err
	}
	uid, role, _ := strings.Cut(v, ":")
	id, err := strconv.ParseUint(uid, 10, 64)
	if err != nil || id == 0 {
		return Claims{}, errBadTicket
	}
	return Claims{UserID: id, Role: role}, nil
}

// authenticateUpgrade is the authentication of GET /v1/ws, the one route
// that may carry its credential in the URL: the Authorization header, else
// ?ticket= (single use), else ?token= (kept for apps and load tests).
func (s *Server) authenticateUpgrade(c *gin.Context) {
	if c.Request.Header.Get("Authorization") == "" {
		if t := c.Query("ticket"); t != "" {
			cl, err := s.redeemTicket(c.Request.Context(), t)
			switch {
			case errors.Is(err, errBadTicket):
				WriteError(c, &refusal.Error{Kind: refusal.Unauthenticated, Field: "ticket", Message: "ticket unknown, already used or expired: get a new one with POST /v1/ws/ticket", Reason: "bad_ticket"})
				return
			case err != nil:
				if sampleDue(&s.ticketLogged) {
					s.log.Warn("cannot redeem a WebSocket ticket", "err", err)
				}
				WriteError(c, refusal.UnavailableFor("redis", "tickets unavailable; retry"))
				return
			}
			c.Set(claimsKey, cl)
			c.Next()
			return
		}
		if tok := c.Query("token"); tok != "" {
			s.authenticateToken(c, tok)
			return
		}
	}
	s.authenticate(c)
}
