package loadtest

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// serveHello runs `onair loadtest hello`: the baseline's hello-world server
// as a process of its own, so the baseline pays the same cross-process
// costs as the onair process it is compared with. It prints its address on
// the first line of stdout and serves until ctx is done.
func serveHello(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("onair loadtest hello", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "onair loadtest hello: %v\n", err)
		return ExitLost
	}
	srv := &http.Server{Handler: helloHandler(), ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintln(stdout, ln.Addr().String())
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "onair loadtest hello: %v\n", err)
		return ExitLost
	}
	return ExitOK
}

// startHelloProcess starts command (e.g. [onair loadtest hello]) on a free
// loopback port and returns its address and a stop function.
func startHelloProcess(command []string) (addr string, stop func(), err error) {
	cmd := exec.Command(command[0], append(command[1:], "--addr", "127.0.0.1:0")...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("cannot start the hello-world server %v: %w", command, err)
	}
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("hello-world server %v did not report its address: %w", command, err)
	}
	return strings.TrimSpace(line), stop, nil
}
