package main

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRun is the example's smoke test: it runs to the end without error.
func TestRun(t *testing.T) {
	if err := run(); err != nil {
		t.Fatalf("run() = %v", err)
	}
}
