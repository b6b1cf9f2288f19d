package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The harness the end-to-end tests drive the service with.

// gatedSender holds every send until release is closed, announcing each on
// entered, and counts what the sender it wraps did.
type gatedSender struct {
	next    Sender
	entered chan uint64   // IDs of sends that began; buffered
	release chan struct{} // closed to let sends through

	ok, failed, panicked atomic.Int64
}

func newGatedSender(next Sender) *gatedSender {
	return &gatedSender{next: next, entered: make(chan uint64, 1000), release: make(chan struct{})}
}

func (g *gatedSender) Send(ctx context.Context, n Notification) (err error) {
	g.entered <- n.ID
	select {
	case <-g.release:
	case <-ctx.Done():
		g.failed.Add(1)
		return ctx.Err()
	}
	defer func() {
		if v := recover(); v != nil {
			g.panicked.Add(1)
			panic(v) // the pool's to recover
		}
		if err != nil {
			g.failed.Add(1)
		} else {
			g.ok.Add(1)
		}
	}()
	return g.next.Send(ctx, n)
}

// lockedBuffer is a bytes.Buffer safe for the logger's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// service is a running instance of the service under test.
type service struct {
	t      *testing.T
	url    string
	client *http.Client
	cancel context.CancelFunc
	done   chan error
	stdout *bytes.Buffer // read only after done
	stderr *lockedBuffer
}

// startService runs serve on a free loopback port with the pool settings in
// env and returns once it listens.
func startService(t *testing.T, env map[string]string, sender Sender, args ...string) *service {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	opts, err := parseFlags(append([]string{"-addr", "127.0.0.1:0", "-pool", "test"}, args...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	addrs := make(chan net.Addr, 1)
	opts.onListen = func(a net.Addr) { addrs <- a }
	opts.sender = sender

	ctx, cancel := context.WithCancel(context.Background())
	s := &service{
		t: t, cancel: cancel, done: make(chan error, 1),
		stdout: new(bytes.Buffer), stderr: new(lockedBuffer),
		client: &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second},
	}
	go func() { s.done <- serve(ctx, opts, s.stdout, s.stderr) }()
	t.Cleanup(func() {
		s.client.CloseIdleConnections()
		cancel()
	})
	select {
	case a := <-addrs:
		s.url = "http://" + a.String()
	case err := <-s.done:
		t.Fatalf("serve() = %v before listening; logs:\n%s", err, s.stderr)
	}
	return s
}

// stop cancels the service's context, as SIGTERM does, and returns serve's
// error and its stdout.
func (s *service) stop() (string, error) {
	s.cancel()
	err := <-s.done
	s.client.CloseIdleConnections()
	return s.stdout.String(), err
}

func (s *service) post(body string) (*http.Response, string) {
	s.t.Helper()
	resp, err := s.client.Post(s.url+"/notify", "application/json", strings.NewReader(body))
	if err != nil {
		s.t.Fatalf("POST /notify: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("POST /notify: reading the body: %v", err)
	}
	return resp, string(b)
}

func (s *service) get(path string) (int, string) {
	s.t.Helper()
	resp, err := s.client.Get(s.url + path)
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("GET %s: reading the body: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

func valid(i int) string {
	return fmt.Sprintf(`{"user":"user%d","channel":"email","message":"hello %d"}`, i, i)
}

// summary parses the key=value pairs of the printed final stats of all
// channels.
func summary(t *testing.T, out string) map[string]uint64 {
	t.Helper()
	return summaryLine(t, out, "final stats: ")
}

// channelSummary parses the key=value pairs of one channel's final stats.
func channelSummary(t *testing.T, out, channel string) map[string]uint64 {
	t.Helper()
	return summaryLine(t, out, "final stats "+channel+": ")
}

func summaryLine(t *testing.T, out, prefix string) map[string]uint64 {
	t.Helper()
	kv := map[string]uint64{}
	for line := range strings.Lines(out) {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		for _, f := range strings.Fields(rest) {
			k, v, _ := strings.Cut(f, "=")
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				t.Fatalf("summary field %q: %v", f, err)
			}
			kv[k] = n
		}
		return kv
	}
	t.Fatalf("no line %q in stdout:\n%s", prefix, out)
	return nil
}
