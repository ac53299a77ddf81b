package api

import (
	"github.com/gin-gonic/gin"

	"github.com/onair/onair/push"
)

// MountPush adds GET /v1/ws (api.md "Live rooms: WebSocket") served by gw,
// and POST /v1/ws/ticket, the single-use ticket a browser opens it with.
// The upgrade is the one route that takes its credential in the URL
// (?ticket=, or ?token=); it is rate limited as every /v1 route. gw
// refuses the rest with the same JSON errors (refusal.Write).
func MountPush(s *Server, gw *push.Gateway) {
	chain := []gin.HandlerFunc{s.authenticateUpgrade}
	if s.limiter != nil {
		chain = append(chain, s.rateLimit)
	}
	chain = append(chain, func(c *gin.Context) {
		cl, _ := ClaimsFrom(c)
		gw.ServeWS(c.Writer, c.Request, cl.UserID)
	})
	s.engine.GET("/v1/ws", chain...)
	if s.cfg.Redis != nil {
		s.V1().POST("/ws/ticket", s.postTicket)
	}
}
