package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/workpool-go/workpool"
)

// scriptedSender fails each user's attempts with the errors in script, in
// order, then succeeds, and records when each attempt started (since
// start) and which attempt workpool.Attempt said it was.
type scriptedSender struct {
	start  time.Time
	script map[string][]error

	mu       sync.Mutex
	started  map[string][]time.Duration // guarded by mu: by channel
	attempts map[string][]int           // guarded by mu: by user
}

func newScriptedSender(script map[string][]error) *scriptedSender {
	return &scriptedSender{start: time.Now(), script: script,
		started: map[string][]time.Duration{}, attempts: map[string][]int{}}
}

func (s *scriptedSender) Send(ctx context.Context, n Notification) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.started[n.Channel] = append(s.started[n.Channel], time.Since(s.start))
	i := len(s.attempts[n.User])
	s.attempts[n.User] = append(s.attempts[n.User], workpool.Attempt(ctx))
	if i < len(s.script[n.User]) {
		return s.script[n.User][i]
	}
	return nil
}

// startPools starts a pool per channel with cfgs, sending with sender, and
// returns them.
func startPools(t *testing.T, cfgs map[string]workpool.Config, sender Sender) (*channelPools, *dropTally) {
	t.Helper()
	reg, err := newRegistry()
	if err != nil {
		t.Fatal(err)
	}
	var drops dropTally
	pools, err := newChannelPools("test", cfgs, sender, reg, slog.New(slog.DiscardHandler), &drops)
	if err != nil {
		t.Fatal(err)
	}
	pools.Start()
	t.Cleanup(func() { pools.Shutdown(context.Background()) })
	return pools, &drops
}

// configs returns the service's configuration with the environment empty,
// changed by f for every channel.
func configs(t *testing.T, f func(ch string, c *workpool.Config)) map[string]workpool.Config {
	t.Helper()
	clearEnv(t)
	cfgs, err := loadConfigs()
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range cfgs {
		f(name, &c)
		cfgs[name] = c
	}
	return cfgs
}

// clearEnv unsets every WORKER_POOL_* variable the service reads, for the
// rest of the test.
func clearEnv(t *testing.T) {
	for _, k := range []string{"MAX_WORKERS", "QUEUE_SIZE", "SHUTDOWN_TIMEOUT_SECONDS", "JOB_TIMEOUT_SECONDS",
		"DROP_POLICY", "MAX_ATTEMPTS", "RETRY_INITIAL_BACKOFF_MS", "RETRY_MAX_BACKOFF_MS", "RETRY_MULTIPLIER",
		"RETRY_JITTER", "RETRY_PANICS", "RATE_LIMIT", "RATE_BURST"} {
		t.Setenv(envPrefix+"_"+k, "") // empty is unset for ConfigFromEnv and loadConfigs
	}
}

// TestLoadConfigs: the service's defaults apply where the environment is
// silent, and the environment wins where it speaks, for every channel.
func TestLoadConfigs(t *testing.T) {
	type retryRate struct {
		MaxAttempts, InitialMillis int
		Jitter, Rate               float64
		Burst                      int
	}
	got := func(cfgs map[string]workpool.Config) map[string]retryRate {
		m := map[string]retryRate{}
		for name, c := range cfgs {
			m[name] = retryRate{c.MaxAttempts, c.RetryInitialBackoffMillis, c.RetryJitter, c.RateLimit, c.RateBurst}
		}
		return m
	}
	tests := []struct {
		name string
		env  map[string]string
		want map[string]retryRate
	}{
		{"service defaults", nil, map[string]retryRate{
			"email": {3, 200, 0.2, 50, 10}, "push": {3, 200, 0.2, 200, 20}, "sms": {3, 200, 0.2, 10, 2},
		}},
		{"environment wins", map[string]string{
			"WORKER_POOL_MAX_ATTEMPTS": "1", "WORKER_POOL_RETRY_INITIAL_BACKOFF_MS": "50",
			"WORKER_POOL_RETRY_JITTER": "0", "WORKER_POOL_RATE_LIMIT": "5",
		}, map[string]retryRate{
			"email": {1, 50, 0, 5, 10}, "push": {1, 50, 0, 5, 20}, "sms": {1, 50, 0, 5, 2},
		}},
		{"no rate limit", map[string]string{"WORKER_POOL_RATE_LIMIT": "0", "WORKER_POOL_RATE_BURST": "0"}, map[string]retryRate{
			"email": {3, 200, 0.2, 0, 0}, "push": {3, 200, 0.2, 0, 0}, "sms": {3, 200, 0.2, 0, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			cfgs, err := loadConfigs()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got(cfgs)); diff != "" {
				t.Errorf("loadConfigs (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRetryAndPermanent: a send that fails for a passing reason is retried
// until it is delivered, with the backoff the configuration sets; one
// whose recipient is rejected runs once, and the summary counts both.
func TestRetryAndPermanent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfgs := configs(t, func(_ string, c *workpool.Config) {
			c.RetryJitter = 0 // exact waits: 200ms, then 400ms
		})
		sender := newScriptedSender(map[string][]error{
			"flaky": {errProvider, errProvider},
			"typo":  {errInvalidRecipient},
			"down":  {errProvider, errProvider, errProvider, errProvider},
		})
		pools, drops := startPools(t, cfgs, sender)
		for i, n := range []Notification{
			{User: "flaky", Channel: "email"}, {User: "typo", Channel: "sms"}, {User: "down", Channel: "push"},
		} {
			n.ID, n.Message = uint64(i+1), "hi"
			if err := pools.Submit(n); err != nil {
				t.Fatal(err)
			}
		}
		if err := pools.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown = %v; want nil: the retries run before its deadline", err)
		}
		want := map[string][]int{"flaky": {1, 2, 3}, "typo": {1}, "down": {1, 2, 3}}
		if diff := cmp.Diff(want, sender.attempts); diff != "" {
			t.Errorf("attempts by user (-want +got):\n%s", diff)
		}
		if got, want := sender.started["email"], []time.Duration{0, 200 * time.Millisecond, 600 * time.Millisecond}; !slices.Equal(got, want) {
			t.Errorf("email attempts started at %v; want %v", got, want)
		}

		var out bytes.Buffer
		printSummary(&out, pools.stats(), drops.snapshot())
		for _, want := range []string{
			"final stats: workers=30 queue_capacity=3000 submitted=3 rejected=0 completed=3 sent=1 failed=2 permanent=1 panicked=0 dropped=0 queued=0 active=0 retrying=0 retries=4\n",
			"final stats email: workers=10 queue_capacity=1000 submitted=1 rejected=0 completed=1 sent=1 failed=0 permanent=0 panicked=0 dropped=0 queued=0 active=0 retrying=0 retries=2\n",
			"final stats push: workers=10 queue_capacity=1000 submitted=1 rejected=0 completed=1 sent=0 failed=1 permanent=0 panicked=0 dropped=0 queued=0 active=0 retrying=0 retries=2\n",
			"final stats sms: workers=10 queue_capacity=1000 submitted=1 rejected=0 completed=1 sent=0 failed=1 permanent=1 panicked=0 dropped=0 queued=0 active=0 retrying=0 retries=0\n",
			"accepted once each: submitted 3 = sent 1 + failed 2 + dropped 0 + still in the pools 0: ok\n",
			"dropped after acceptance, by reason: none\n",
		} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("summary has no line %q:\n%s", want, out.String())
			}
		}
	})
}

// TestRateLimitPerChannel: each channel's pool starts sends at its own
// rate, so a slow channel does not hold up another.
func TestRateLimitPerChannel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfgs := configs(t, func(ch string, c *workpool.Config) {
			c.RateBurst = 1
			c.RateLimit = map[string]float64{"email": 10, "push": 0, "sms": 2}[ch] // push: no limit
		})
		sender := newScriptedSender(nil)
		pools, _ := startPools(t, cfgs, sender)
		for i := range 9 {
			n := Notification{ID: uint64(i + 1), User: fmt.Sprint("u", i), Channel: []string{"sms", "email", "push"}[i%3], Message: "hi"}
			if err := pools.Submit(n); err != nil {
				t.Fatal(err)
			}
		}
		if err := pools.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		want := map[string][]time.Duration{
			"email": {0, 100 * time.Millisecond, 200 * time.Millisecond},
			"push":  {0, 0, 0},
			"sms":   {0, 500 * time.Millisecond, time.Second},
		}
		for ch := range sender.started {
			slices.Sort(sender.started[ch])
		}
		if diff := cmp.Diff(want, sender.started); diff != "" {
			t.Errorf("sends started at, by channel (-want +got):\n%s", diff)
		}
	})
}

// TestDeliverMarksPermanent: only a rejected recipient is permanent.
func TestDeliverMarksPermanent(t *testing.T) {
	for _, tt := range []struct {
		err       error
		permanent bool
	}{
		{nil, false},
		{fmt.Errorf("sending: %w", errProvider), false},
		{fmt.Errorf("sending: %w", errInvalidRecipient), true},
		{context.DeadlineExceeded, false},
	} {
		h := deliver(newScriptedSender(map[string][]error{"u": {tt.err}}))
		err := h(context.Background(), Notification{User: "u"})
		if !errors.Is(err, tt.err) || workpool.IsPermanent(err) != tt.permanent {
			t.Errorf("deliver with Send error %v = %v (permanent %t); want that error, permanent %t",
				tt.err, err, workpool.IsPermanent(err), tt.permanent)
		}
	}
}
