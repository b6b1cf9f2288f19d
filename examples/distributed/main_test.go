package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRun is the example's smoke test: a small run on an embedded server,
// with metrics served on a loopback port, reports every job done once.
func TestRun(t *testing.T) {
	var out strings.Builder
	cfg := config{jobs: 200, workers: 2, flaky: 7, metrics: "127.0.0.1:0", jobTime: time.Millisecond, deadline: time.Minute}
	if err := run(context.Background(), cfg, &out); err != nil {
		t.Fatalf("run = %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"every job completed exactly once (200 jobs)",
		`natsq_messages_acked_total{replica="a"}`,
		`natsq_messages_naked_total{reason="error",replica="b"}`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
