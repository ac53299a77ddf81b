package loadtest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// wsHello is the same-run baseline of `onair loadtest ws --baseline`: a
// bare gorilla/websocket server with default buffers, in a process of its
// own (`onair loadtest wshello`), that writes each frame POSTed to
// /broadcast to every connection at once, as its own frame (no Kafka, no
// batching, no snapshot, no auth). It is the floor the machine allows for
// the same swarm and the same send path shape (one HTTP call per message).
type wsHello struct {
	mu    sync.Mutex
	conns []*websocket.Conn
	// sendMu makes broadcasts one at a time: a connection takes one writer.
	sendMu sync.Mutex
}

func (h *wsHello) handler() http.Handler {
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
	mux.HandleFunc("POST /broadcast", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		h.broadcast(b)
		w.WriteHeader(http.StatusAccepted)
	})
	return mux
}

// broadcast writes b to every connection, each on its own goroutine.
func (h *wsHello) broadcast(b []byte) {
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, b)
	if err != nil {
		return
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
}

// serveWSHello is `onair loadtest wshello [--addr]`: it prints its address
// and serves until ctx ends.
func serveWSHello(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("onair loadtest wshello", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	raiseFileLimit()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "onair loadtest wshello: %v\n", err)
		return ExitLost
	}
	srv := &http.Server{Handler: (&wsHello{}).handler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintln(stdout, ln.Addr().String())
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "onair loadtest wshello: %v\n", err)
		return ExitLost
	}
	return ExitOK
}

// startWSHello runs `onair loadtest wshello` and returns its base URL and
// the send function of message idx.
func (r *wsRun) startWSHello() (target string, send func(int) error, stop func(), err error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil, nil, err
	}
	addr, stop, err := startHelloProcess([]string{exe, "loadtest", "wshello"})
	if err != nil {
		return "", nil, nil, err
	}
	target = "http://" + addr
	// A broadcast to 20 000 viewers may take long on a busy machine; a
	// timeout would count as lost a message the viewers still receive.
	cl := &http.Client{Timeout: 5 * time.Minute}
	send = func(idx int) error {
		b := fmt.Sprintf(`{"type":"batch","items":[{"type":"danmaku","room_id":%d,"user_id":1,"text":"lt:%s:%d"}]}`, r.cfg.Room, r.id, idx)
		r.sent[idx].Store(time.Now().UnixNano())
		resp, err := cl.Post(target+"/broadcast", "application/json", strings.NewReader(b))
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	return target, send, stop, nil
}
