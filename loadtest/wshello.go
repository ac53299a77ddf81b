package loadtest

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// wsHello is the same-run baseline of `onair loadtest ws --baseline`: a
// bare gorilla/websocket server with default buffers, in the load
// generator's process, that writes each danmaku to every connection the
// moment it is sent, as its own frame (no Kafka, no batching, no snapshot,
// no auth). It is the floor the machine allows for the same swarm.
type wsHello struct {
	srv   *http.Server
	ln    net.Listener
	mu    sync.Mutex
	conns []*websocket.Conn
	// sendMu makes broadcasts one at a time: a connection takes one writer.
	sendMu sync.Mutex
}

func startWSHello() (*wsHello, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &wsHello{ln: ln}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/ws", func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		h.mu.Lock()
		h.conns = append(h.conns, ws)
		h.mu.Unlock()
		go func() { // discard pings
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		}()
	})
	h.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = h.srv.Serve(ln) }()
	return h, nil
}

func (h *wsHello) url() string { return "http://" + h.ln.Addr().String() }

// send writes message idx of run to every connection.
func (h *wsHello) send(room uint64, run string, idx int) error {
	b := []byte(`{"type":"batch","items":[{"type":"danmaku","room_id":` + strconv.FormatUint(room, 10) +
		`,"user_id":1,"text":"lt:` + run + `:` + strconv.Itoa(idx) + `"}]}`)
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, b)
	if err != nil {
		return err
	}
	h.mu.Lock()
	conns := h.conns
	h.mu.Unlock()
	h.sendMu.Lock()
	defer h.sendMu.Unlock()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.WritePreparedMessage(pm)
		}()
	}
	wg.Wait()
	return nil
}

func (h *wsHello) close() {
	_ = h.srv.Close()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.conns {
		c.Close()
	}
}
