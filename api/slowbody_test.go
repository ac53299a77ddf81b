package api

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestStalledUploadsAreCutOffCheaply: clients that announce a 1 MiB body
// and send one byte cost what they sent, not what they announced, and are
// all closed once ReadTimeout passes. Breaks tried: the old readBody (a
// buffer of Content-Length at once) held ~1 MiB per upload and failed the
// memory bound; without ReadTimeout the uploads were still open at the
// deadline.
func TestStalledUploadsAreCutOffCheaply(t *testing.T) {
	const uploads = 200
	const readTimeout = time.Second
	e := newEnv(t, func(c *Config) { c.ReadTimeout = readTimeout })
	if err := e.s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.s.Shutdown(t.Context()) })
	tok := token(t, 42, "")

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	baseG := runtime.NumGoroutine()

	conns := make([]net.Conn, 0, uploads)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	start := time.Now()
	for range uploads {
		c, err := net.Dial("tcp", e.s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", tok, 1<<20)
	}
	// Every upload is in a handler, reading its body: a goroutine each.
	deadline := time.Now().Add(readTimeout / 2)
	for runtime.NumGoroutine() < baseG+uploads && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	runtime.GC()
	var during runtime.MemStats
	runtime.ReadMemStats(&during)
	held := int64(during.HeapInuse+during.StackInuse) - int64(before.HeapInuse+before.StackInuse)
	t.Logf("%d stalled uploads hold %d KiB of heap and stacks (%d B each; stacks %d B each), %d goroutines", uploads, held>>10, held/uploads,
		(int64(during.StackInuse)-int64(before.StackInuse))/uploads, runtime.NumGoroutine()-baseG)
	// net/http itself holds ~18 KiB per connection reading a body (an
	// 8 KiB stack, 4 KiB read and write buffers, 2 KiB before chunking);
	// the bound leaves room for that and the request, not for a body
	// allocated from the announced length.
	if perUpload := held / uploads; perUpload > 32<<10 {
		t.Fatalf("a stalled upload holds %d B of heap and stack, want < 32 KiB (the announced 1 MiB must not be allocated)", perUpload)
	}

	// Each is answered (400: the body did not arrive in time) and closed.
	limit := readTimeout + 5*time.Second
	for i, c := range conns {
		_ = c.SetReadDeadline(start.Add(limit))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 400 {
				t.Fatalf("upload %d answered %d, want 400", i, resp.StatusCode)
			}
			var one [1]byte
			_, err = c.Read(one[:])
		}
		if err == nil || !(err == io.EOF || strings.Contains(err.Error(), "connection reset")) {
			t.Fatalf("upload %d: still open %s after it started (read: %v), want closed after the %s read timeout", i, time.Since(start).Round(time.Millisecond), err, readTimeout)
		}
	}
	t.Logf("all %d closed %s after they started", uploads, time.Since(start).Round(time.Millisecond))
}
