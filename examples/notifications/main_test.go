package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

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

// summary parses the key=value pairs of the printed final stats.
func summary(t *testing.T, out string) map[string]uint64 {
	t.Helper()
	kv := map[string]uint64{}
	for line := range strings.Lines(out) {
		rest, ok := strings.CutPrefix(line, "final stats: ")
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
	t.Fatalf("no final stats in stdout:\n%s", out)
	return nil
}

// TestEndToEnd runs the service with one worker and a queue of two: it
// accepts, refuses with 503 when full, rejects bad requests with 400,
// exposes exact metrics, and at shutdown every accepted notification has
// been sent or failed, as the printed stats say.
func TestEndToEnd(t *testing.T) {
	sender := newGatedSender(newSimulatedSender(42, 0, 0.2, 0.1))
	s := startService(t, map[string]string{
		"WORKER_POOL_MAX_WORKERS":              "1",
		"WORKER_POOL_QUEUE_SIZE":               "2",
		"WORKER_POOL_SHUTDOWN_TIMEOUT_SECONDS": "30",
		"WORKER_POOL_JOB_TIMEOUT_SECONDS":      "10",
	}, sender, "-log-level", "error")

	accepted, refused := 0, 0
	post := func(i, want int) {
		t.Helper()
		resp, body := s.post(valid(i))
		if resp.StatusCode != want {
			t.Fatalf("POST /notify #%d = %d %s; want %d", i, resp.StatusCode, body, want)
		}
		accepted++
	}
	post(1, http.StatusAccepted)
	<-sender.entered // the only worker holds notification 1
	post(2, http.StatusAccepted)
	post(3, http.StatusAccepted)
	resp, body := s.post(valid(4))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("POST /notify on a full queue = %d (Retry-After %q) %s; want 503 with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	refused++

	for _, tc := range []struct{ name, body, want string }{
		{"bad JSON", `{"user":`, "not a valid JSON notification"},
		{"empty body", ``, "request body is empty"},
		{"missing fields", `{"user":"ada"}`, "missing required fields: channel, message"},
		{"blank field", `{"user":" ","channel":"sms","message":"x"}`, "missing required fields: user"},
		{"unknown channel", `{"user":"ada","channel":"fax","message":"x"}`, `channel "fax" is not one of`},
		{"unknown field", `{"user":"ada","channel":"sms","message":"x","urgent":true}`, `unknown field "urgent"`},
		{"two objects", valid(5) + valid(6), "data after the JSON object"},
		{"id set", `{"id":7,"user":"ada","channel":"sms","message":"x"}`, `"id" is assigned by the server`},
	} {
		resp, body := s.post(tc.body)
		var msg struct{ Error string }
		if err := json.Unmarshal([]byte(body), &msg); err != nil {
			t.Errorf("%s: POST /notify body %q is not JSON: %v", tc.name, body, err)
		}
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(msg.Error, tc.want) {
			t.Errorf("%s: POST /notify = %d %s; want 400 mentioning %q", tc.name, resp.StatusCode, body, tc.want)
		}
	}
	if code, _ := s.get("/notify"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /notify = %d; want 405", code)
	}
	if code, body := s.get("/healthz"); code != http.StatusOK {
		t.Errorf("GET /healthz = %d %s; want 200", code, body)
	}

	// While the worker holds job 1, the numbers are exact.
	code, metrics := s.get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d", code)
	}
	for _, want := range []string{
		`notification_worker_pool_workers{pool="test"} 1`,
		`notification_worker_pool_queue_capacity{pool="test"} 2`,
		`notification_worker_pool_queue_depth{pool="test"} 2`,
		`notification_worker_pool_active_workers{pool="test"} 1`,
		`notification_worker_pool_submitted_jobs_total{pool="test"} 3`,
		`notification_worker_pool_completed_jobs_total{pool="test"} 0`,
		`notification_worker_pool_dropped_jobs_total{pool="test",reason="queue_full"} 1`,
		`notification_worker_pool_job_wait_seconds_count{pool="test"} 1`,
		`go_goroutines `,
	} {
		if !strings.Contains(metrics, want+"\n") && !strings.Contains(metrics, "\n"+want) {
			t.Errorf("GET /metrics has no line %q", want)
		}
	}

	// Let the sender through and keep posting: now some are sent, some fail,
	// some panic, and the queue may still refuse a few.
	close(sender.release)
	for i := 10; i < 60; i++ {
		resp, body := s.post(valid(i))
		switch resp.StatusCode {
		case http.StatusAccepted:
			accepted++
		case http.StatusServiceUnavailable:
			refused++
		default:
			t.Fatalf("POST /notify #%d = %d %s; want 202 or 503", i, resp.StatusCode, body)
		}
	}

	out, err := s.stop()
	if err != nil {
		t.Fatalf("serve() = %v; want nil after a graceful shutdown\nlogs:\n%s", err, s.stderr)
	}
	got := summary(t, out)
	ok, failed, panicked := uint64(sender.ok.Load()), uint64(sender.failed.Load()), uint64(sender.panicked.Load())
	for _, c := range []struct {
		field string
		want  uint64
	}{
		{"submitted", uint64(accepted)},
		{"rejected", uint64(refused)},
		{"completed", uint64(accepted)}, // all sent or failed: none dropped
		{"sent", ok},
		{"failed", failed + panicked},
		{"panicked", panicked},
		{"dropped", 0},
		{"queued", 0},
		{"active", 0},
	} {
		if got[c.field] != c.want {
			t.Errorf("final stats %s = %d; want %d\nstdout:\n%s", c.field, got[c.field], c.want, out)
		}
	}
	if !strings.Contains(out, "dropped after acceptance, by reason: none\n") {
		t.Errorf("stdout does not say nothing was dropped:\n%s", out)
	}
}

// TestShutdownTimeout: when the shutdown timeout passes with notifications
// still queued, they are reported as dropped, the running one's context is
// cancelled, and serve says so in its error.
func TestShutdownTimeout(t *testing.T) {
	sender := newGatedSender(newSimulatedSender(1, 0, 0, 0)) // never released
	s := startService(t, map[string]string{
		"WORKER_POOL_MAX_WORKERS":              "1",
		"WORKER_POOL_QUEUE_SIZE":               "2",
		"WORKER_POOL_SHUTDOWN_TIMEOUT_SECONDS": "1",
	}, sender, "-log-level", "error")
	for i := range 3 {
		if resp, body := s.post(valid(i)); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST /notify #%d = %d %s; want 202", i, resp.StatusCode, body)
		}
		if i == 0 {
			<-sender.entered
		}
	}

	out, err := s.stop()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("serve() = %v; want context.DeadlineExceeded", err)
	}
	got := summary(t, out)
	// Shutdown returns without waiting for the running send, whose context
	// it cancelled: it may or may not have returned (as failed) by the time
	// the stats are read.
	if got["submitted"] != 3 || got["dropped"] != 2 || got["sent"] != 0 ||
		got["completed"]+got["active"] != 1 || got["failed"] != got["completed"] {
		t.Errorf("final stats = %v; want submitted 3 = dropped 2 + 1 failed or still active", got)
	}
	if got["active"] == 1 && !strings.Contains(out, "still sending when shutdown gave up (outcome unknown): 1\n") {
		t.Errorf("stdout does not report the send still running:\n%s", out)
	}
	if !strings.Contains(out, "dropped after acceptance, by reason: shutdown_timeout=2\n") {
		t.Errorf("stdout does not give the drops' reason:\n%s", out)
	}
}

func TestRunErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"bad environment", map[string]string{"WORKER_POOL_QUEUE_SIZE": "10k"}, nil, `WORKER_POOL_QUEUE_SIZE="10k"`},
		{"unknown flag", nil, []string{"-nope"}, "flag provided but not defined"},
		{"bad rates", nil, []string{"-fail-rate", "0.9", "-panic-rate", "0.2"}, "sum of at most 1"},
		{"bad log level", nil, []string{"-log-level", "loud"}, "-log-level"},
		{"bad address", nil, []string{"-addr", "127.0.0.1:-1"}, "invalid port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			err := run(context.Background(), tt.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run(%q) = %v; want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}

// TestSimulatedSender: the outcomes follow the rates, and the same seed gives
// the same sequence.
func TestSimulatedSender(t *testing.T) {
	outcomes := func(seed uint64) (ok, failed, panicked int) {
		s := newSimulatedSender(seed, 0, 0.3, 0.1)
		for i := range 1000 {
			func() {
				defer func() {
					if recover() != nil {
						panicked++
					}
				}()
				if err := s.Send(context.Background(), Notification{ID: uint64(i)}); err != nil {
					if !errors.Is(err, errProvider) {
						t.Fatalf("Send() = %v; want errProvider", err)
					}
					failed++
					return
				}
				ok++
			}()
		}
		return ok, failed, panicked
	}
	ok, failed, panicked := outcomes(7)
	if ok < 500 || failed < 200 || panicked < 50 || failed > 400 || panicked > 150 {
		t.Errorf("1000 sends at 30%% errors and 10%% panics: ok %d, failed %d, panicked %d", ok, failed, panicked)
	}
	if ok2, failed2, panicked2 := outcomes(7); ok2 != ok || failed2 != failed || panicked2 != panicked {
		t.Errorf("same seed: %d/%d/%d, then %d/%d/%d; want the same", ok, failed, panicked, ok2, failed2, panicked2)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	slow := newSimulatedSender(1, time.Hour, 0, 0)
	if err := slow.Send(ctx, Notification{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Send(cancelled ctx) = %v; want context.Canceled", err)
	}
}
