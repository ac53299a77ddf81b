package api

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/onair/onair/internal/refusal"
	"github.com/onair/onair/lifecycle"
)

// eraseTimeout bounds one erasure: a few ClickHouse statements (the
// mutations are submitted, not waited for) and Redis round trips per room.
const eraseTimeout = 30 * time.Second

// MountErase adds POST /v1/admin/users/{id}/erase (admin): the user is
// removed from everything onair keeps (lifecycle.Eraser). 202 with the
// same body every time; a failure is 503 and the call is retried whole.
func MountErase(s *Server, e *lifecycle.Eraser) {
	s.Admin().POST("/users/:id/erase", func(c *gin.Context) {
		user, re := pathID(c, "id")
		if re != nil {
			WriteError(c, re)
			return
		}
		ctx, cancel := context.WithTimeout(c.Request.Context(), eraseTimeout)
		defer cancel()
		by, _ := ClaimsFrom(c)
		out, err := e.Erase(ctx, user, by.UserID)
		if err != nil {
			// logged and counted (onair_lifecycle_failures_total) by the eraser
			WriteError(c, refusal.UnavailableFor("erase_failed", "the erasure did not complete; call it again (it is idempotent)"))
			return
		}
		c.JSON(http.StatusAccepted, out)
	})
}
