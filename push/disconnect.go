package push

import "github.com/gorilla/websocket"

// Disconnect is why the gateway closed a connection: the WebSocket close
// code and reason the client receives, and whether it should reconnect.
// Codes 3000–3499 mean "reconnect (with ?since=)", 3500–3999 mean "do not
// reconnect without changing something"; docs/api.md lists them all.
type Disconnect struct {
	// Code is the WebSocket close code.
	Code int
	// Reason is the close frame's text, also the label of
	// onair_push_disconnects_total.
	Reason string
	// Reconnect tells clients whether reconnecting can help.
	Reconnect bool
}

// The close codes of the gateway, one table (as centrifuge's disconnect.go).
var (
	// DisconnectShutdown: the node is stopping; reconnect (another node
	// answers) with ?since= to resume.
	DisconnectShutdown = Disconnect{Code: 3001, Reason: "shutdown", Reconnect: true}
	// DisconnectSlow: the connection's send queue stayed full after it had
	// already stepped down to state-only frames.
	DisconnectSlow = Disconnect{Code: 3008, Reason: "slow", Reconnect: true}
	// DisconnectIdle: no frame from the client within the idle timeout
	// (clients send {"type":"ping"} at least every 30 s).
	DisconnectIdle = Disconnect{Code: 3012, Reason: "idle", Reconnect: true}
	// DisconnectWriteFailed: a write did not complete within the write
	// timeout; the peer is gone or stuck.
	DisconnectWriteFailed = Disconnect{Code: 3013, Reason: "write failed", Reconnect: true}
	// DisconnectBadFrame: the client sent a frame that is not JSON or has
	// an unknown type.
	DisconnectBadFrame = Disconnect{Code: 3501, Reason: "bad frame", Reconnect: false}
	// DisconnectTooManyFrames: the client sent frames (pings, acks) faster
	// than Config.FrameRate beyond Config.FrameBurst. In the "do not
	// reconnect" range: the same client would flood again.
	DisconnectTooManyFrames = Disconnect{Code: 3508, Reason: "too many frames", Reconnect: false}
	// DisconnectTooBig: a client frame exceeded the read limit (gorilla
	// closes with 1009 itself; this names it in the metric).
	DisconnectTooBig = Disconnect{Code: websocket.CloseMessageTooBig, Reason: "frame too big", Reconnect: false}
	// DisconnectClient: the client closed or dropped the connection.
	DisconnectClient = Disconnect{Code: websocket.CloseNormalClosure, Reason: "client closed", Reconnect: false}
)

// disconnects lists every Disconnect: each is a label of
// onair_push_disconnects_total from the start.
var disconnects = []Disconnect{DisconnectShutdown, DisconnectSlow, DisconnectIdle,
	DisconnectWriteFailed, DisconnectBadFrame, DisconnectTooManyFrames, DisconnectTooBig, DisconnectClient}
