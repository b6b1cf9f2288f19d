package main

import (
	"context"
	"errors"
	"flag"
	"regexp"
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

// TestRunClusterKillLeader: on three embedded servers, with the stream's
// leader crashed a third of the way, every job still runs, and the report
// names the server it stopped and counts the jobs that ran more than once.
func TestRunClusterKillLeader(t *testing.T) {
	var out strings.Builder
	cfg := config{jobs: 300, workers: 2, cluster: 3, kill: true, jobTime: 5 * time.Millisecond, deadline: 90 * time.Second}
	if err := run(context.Background(), cfg, &out); err != nil {
		t.Fatalf("run = %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"embedded JetStream cluster of 3 servers at nats://127.0.0.1:",
		", the stream leader, abruptly after ",
		"every job ran (300 jobs); ",
		" ran more than once",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if !regexp.MustCompile(`stopped natsq-\d, the stream leader, abruptly after \d+ of 300 jobs; natsq-\d leads since `).MatchString(out.String()) {
		t.Errorf("output lacks the line on the stopped server and the new leader:\n%s", out.String())
	}
}

// TestFlags: bad flag values are errors that name the flag and the value,
// before anything starts; -h names the program, not go run's temporary
// binary.
func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // in the error; "" for none
	}{
		{nil, ""},
		{[]string{"-jobs", "5", "-workers", "1", "-flaky", "0", "-job-time", "0s"}, ""},
		{[]string{"-jobs", "-3"}, "-jobs must be at least 1, got -3"},
		{[]string{"-jobs", "0"}, "-jobs must be at least 1, got 0"},
		{[]string{"-workers", "0"}, "-workers must be between 1 and"},
		{[]string{"-flaky", "-1"}, "-flaky must be 0 (no flaky jobs) or more, got -1"},
		{[]string{"-job-time", "-1s"}, "-job-time must not be negative, got -1s"},
		{[]string{"-deadline", "0s"}, "-deadline must be positive, got 0s"},
		{[]string{"-jobs", "x"}, `invalid value "x" for flag -jobs`},
		{[]string{"extra"}, "unexpected arguments"},
		{[]string{"-cluster", "3", "-kill-leader"}, ""},
		{[]string{"-cluster", "5"}, ""},
		{[]string{"-cluster", "2"}, "-cluster must be 0 (one server) or an odd number of at least 3, got 2"},
		{[]string{"-cluster", "1"}, "-cluster must be 0 (one server) or an odd number of at least 3, got 1"},
		{[]string{"-cluster", "-3"}, "-cluster must be 0 (one server) or an odd number of at least 3, got -3"},
		{[]string{"-kill-leader"}, "-kill-leader needs -cluster 3 (or more)"},
		{[]string{"-cluster", "3", "-nats", "nats://h:4222"}, "-cluster starts embedded servers; it cannot be combined with -nats nats://h:4222"},
	} {
		var out strings.Builder
		_, err := parseFlags(tc.args, &out)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("parseFlags(%q) = %v; want no error", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error()+out.String(), tc.want)):
			t.Errorf("parseFlags(%q) = %v (output %q); want an error with %q", tc.args, err, out.String(), tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "queue size") {
			t.Errorf("parseFlags(%q) = %v: reports a setting the user did not make", tc.args, err)
		}
	}
	var out strings.Builder
	if _, err := parseFlags([]string{"-h"}, &out); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("parseFlags(-h) = %v; want flag.ErrHelp", err)
	}
	if u := out.String(); !strings.HasPrefix(u, "usage: distributed ") || strings.Contains(u, "go-build") || !strings.Contains(u, "-jobs") {
		t.Errorf("-h prints:\n%s\nwant a usage line for %q and the flags", u, name)
	}
}
