package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/workpool-go/workpool"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestEndToEnd runs the service with one worker and a queue of two per
// channel, and the service's default retries and rate limits: it accepts,
// refuses with 503 when full, rejects bad requests with 400, exposes exact
// metrics, and at shutdown every accepted notification has been sent or
// failed, once, whatever its attempts, as the printed stats say.
func TestEndToEnd(t *testing.T) {
	sender := newGatedSender(newSimulatedSender(42, 0, 0.2, 0.1, 0))
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
		`notification_worker_pool_workers{pool="test-email"} 1`,
		`notification_worker_pool_queue_capacity{pool="test-email"} 2`,
		`notification_worker_pool_queue_depth{pool="test-email"} 2`,
		`notification_worker_pool_active_workers{pool="test-email"} 1`,
		`notification_worker_pool_submitted_jobs_total{pool="test-email"} 3`,
		`notification_worker_pool_completed_jobs_total{pool="test-email"} 0`,
		`notification_worker_pool_dropped_jobs_total{pool="test-email",reason="queue_full"} 1`,
		`notification_worker_pool_job_wait_seconds_count{pool="test-email"} 1`,
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
	// The sender counts attempts: one per notification, plus its retries.
	ok, failed, panicked := uint64(sender.ok.Load()), uint64(sender.failed.Load()), uint64(sender.panicked.Load())
	for _, c := range []struct {
		field string
		want  uint64
	}{
		{"submitted", uint64(accepted)},
		{"rejected", uint64(refused)},
		{"completed", uint64(accepted)}, // all sent or failed: none dropped
		{"sent", ok},                    // a notification is sent once at most
		{"failed", uint64(accepted) - ok},
		{"panicked", panicked}, // panics are not retried
		{"retries", ok + failed + panicked - uint64(accepted)},
		{"permanent", 0},
		{"dropped", 0},
		{"queued", 0},
		{"active", 0},
		{"retrying", 0},
	} {
		if got[c.field] != c.want {
			t.Errorf("final stats %s = %d; want %d\nstdout:\n%s", c.field, got[c.field], c.want, out)
		}
	}
	if got["retries"] == 0 {
		t.Errorf("no retries at a 20%% failure rate:\n%s", out)
	}
	if email := channelSummary(t, out, "email"); email["submitted"] != got["submitted"] || email["retries"] != got["retries"] {
		t.Errorf("email's line %v does not hold all the notifications of %v", email, got)
	}
	for _, want := range []string{
		fmt.Sprintf("accepted once each: submitted %d = sent %d + failed %d + dropped 0 + still in the pools 0: ok\n",
			accepted, ok, uint64(accepted)-ok),
		"dropped after acceptance, by reason: none\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout has no line %q:\n%s", want, out)
		}
	}
}

// TestShutdownTimeout: when the shutdown timeout passes with notifications
// still queued, they are reported as dropped, the running one's context is
// cancelled, and serve says so in its error.
func TestShutdownTimeout(t *testing.T) {
	sender := newGatedSender(newSimulatedSender(1, 0, 0, 0, 0)) // never released
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
	if !strings.Contains(out, "dropped after acceptance, by reason: shutdown=2\n") {
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
		{"bad invalid rate", nil, []string{"-invalid-rate", "1.5"}, "-invalid-rate must be between 0 and 1, got 1.5"},
		{"bad retry environment", map[string]string{"WORKER_POOL_MAX_ATTEMPTS": "x"}, nil, `WORKER_POOL_MAX_ATTEMPTS="x" is not an integer`},
		{"bad rate environment", map[string]string{"WORKER_POOL_RATE_LIMIT": "-1"}, nil, `WORKER_POOL_RATE_LIMIT="-1" is out of range`},
		{"environment against a service default", map[string]string{"WORKER_POOL_RETRY_MAX_BACKOFF_MS": "100"}, nil,
			"retry max backoff ms must be at least the initial backoff, 200, got 100 (with this service's defaults for unset variables)"},
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
		s := newSimulatedSender(seed, 0, 0.3, 0.1, 0)
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

	// The provider rejects the same recipients every time, about the share
	// asked for, and with a permanent error once deliver has seen it.
	picky := newSimulatedSender(3, 0, 0, 0, 0.2)
	rejected := 0
	for i := range 1000 {
		n := Notification{User: fmt.Sprint("user", i), Channel: "sms"}
		err := picky.Send(context.Background(), n)
		if again := picky.Send(context.Background(), n); errors.Is(again, errInvalidRecipient) != errors.Is(err, errInvalidRecipient) {
			t.Fatalf("Send(%s) = %v, then %v; want the same verdict", n.User, err, again)
		}
		if errors.Is(err, errInvalidRecipient) {
			rejected++
			if err := deliver(picky)(context.Background(), n); !workpool.IsPermanent(err) {
				t.Fatalf("deliver(%s) = %v; want a permanent error", n.User, err)
			}
		}
	}
	if rejected < 150 || rejected > 250 {
		t.Errorf("1000 recipients at a 20%% rejection rate: %d rejected", rejected)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	slow := newSimulatedSender(1, time.Hour, 0, 0, 0)
	if err := slow.Send(ctx, Notification{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Send(cancelled ctx) = %v; want context.Canceled", err)
	}
}
