package push

import (
	"time"

	"github.com/onair/onair/internal/logsample"
)

// logSamplers keep events that come in bursts (a room of slow viewers
// stepping down together, a flood of refused upgrades) from flooding the
// log: one line per interval per kind, with "count", the occurrences it
// stands for. onair_push_* counts every one.
type logSamplers struct {
	stepDown  *logsample.Sampler
	closed    map[Disconnect]*logsample.Sampler // closes that say something about the client or the path
	refused   *logsample.Sampler
	userConns *logsample.Sampler // Redis failures of the per-user slots
}

func newLogSamplers(every time.Duration) logSamplers {
	s := logSamplers{
		stepDown:  &logsample.Sampler{Every: every},
		closed:    make(map[Disconnect]*logsample.Sampler),
		refused:   &logsample.Sampler{Every: every},
		userConns: &logsample.Sampler{Every: every},
	}
	for _, d := range disconnects {
		if d != DisconnectClient && d != DisconnectShutdown && d != DisconnectIdle {
			s.closed[d] = &logsample.Sampler{Every: every}
		}
	}
	return s
}

// logClose logs a close by the server (sampled per reason); closes by the
// client, at shutdown and for idleness are routine and only counted.
func (g *Gateway) logClose(c *client, d Disconnect, queued int) {
	s := g.logs.closed[d]
	if s == nil {
		return
	}
	if n, ok := s.Due(); ok {
		g.log.Info("push: connection closed", "reason", d.Reason, "code", d.Code, "room", c.roomID(), "user", c.user, "queued", queued, "count", n)
	}
}
