package api

import (
	"github.com/gin-gonic/gin"

	"github.com/onair/onair/push"
)

// MountPush adds GET /v1/ws (api.md "Live rooms: WebSocket") served by gw.
// The /v1 group has checked the token (header or ?token=) before the
// upgrade; gw refuses the rest with the same JSON errors (refusal.Write).
func MountPush(s *Server, gw *push.Gateway) {
	s.V1().GET("/ws", func(c *gin.Context) {
		cl, _ := ClaimsFrom(c)
		gw.ServeWS(c.Writer, c.Request, cl.UserID)
	})
}
