package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"go.uber.org/goleak"

	"github.com/workpool-go/workpool"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func smallConfig() config {
	return config{
		Lines:           20_000,
		Workers:         4,
		Queue:           16, // small, so the producer really waits
		Progress:        time.Millisecond,
		ShutdownTimeout: 10 * time.Second,
	}
}

// wantChecksum computes the summary's checksum sequentially, without a pool.
func wantChecksum(t *testing.T, r io.Reader) string {
	t.Helper()
	var sum uint64
	sc := newScanner(r)
	for sc.Scan() {
		sum += digest(sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("checksum %016x\n", sum)
}

// TestRunGenerated is the smoke test: every generated line is processed
// exactly once (the checksum would differ if one were lost or repeated).
func TestRunGenerated(t *testing.T) {
	cfg := smallConfig()
	cfg.Work = 20 * time.Microsecond // long enough for progress lines
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), cfg, nil, &stdout, &stderr); err != nil {
		t.Fatalf("run() = %v; stderr:\n%s", err, &stderr)
	}
	out := stdout.String()
	for _, want := range []string{
		"processed 20000/20000 lines",
		"submitted 20000, failed 0, dropped 0, refused 0\n",
		wantChecksum(t, &generated{n: cfg.Lines}),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout does not contain %q:\n%s", want, out)
		}
	}
	if stderr.Len() == 0 {
		t.Error("no progress lines on stderr (not a terminal)")
	}
	for line := range strings.Lines(stderr.String()) {
		if !strings.HasPrefix(line, "progress: ") {
			t.Errorf("stderr line = %q; want a progress line", line)
		}
	}
}

// TestRunFile reads a file, including a last line with no newline.
func TestRunFile(t *testing.T) {
	content := "alpha\nbeta\n\ngamma"
	path := filepath.Join(t.TempDir(), "input.txt")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := smallConfig()
	cfg.Input = path
	var stdout bytes.Buffer
	if err := run(context.Background(), cfg, nil, &stdout, io.Discard); err != nil {
		t.Fatalf("run() = %v", err)
	}
	out := stdout.String()
	for _, want := range []string{"processed 4/4 lines", wantChecksum(t, strings.NewReader(content))} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout does not contain %q:\n%s", want, out)
		}
	}
}

// TestRunCanceled: an interrupted run stops reading, finishes what it
// queued, prints its summary and returns the context's error.
func TestRunCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout bytes.Buffer
	err := run(ctx, smallConfig(), nil, &stdout, io.Discard)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("run(canceled ctx) = %v; want context.Canceled", err)
	}
	if !strings.Contains(stdout.String(), "processed 0/20000 lines") {
		t.Errorf("stdout = %q; want a summary of 0 lines", stdout.String())
	}
}

func TestRunErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(*config)
		want string
	}{
		{"missing file", func(c *config) { c.Input = filepath.Join(t.TempDir(), "nope") }, "no such file"},
		{"negative lines", func(c *config) { c.Lines = -1 }, "-lines must not be negative"},
		{"zero workers", func(c *config) { c.Workers = 0 }, "workers must be positive"},
		{"line too long", func(c *config) {
			c.Input = filepath.Join(t.TempDir(), "long")
			if err := os.WriteFile(c.Input, bytes.Repeat([]byte("x"), 2<<20), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "token too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := smallConfig()
			tt.edit(&cfg)
			err := run(context.Background(), cfg, nil, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run() = %v; want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"-lines", "5", "-workers", "3", "-work", "1ms"}, io.Discard)
	if err != nil {
		t.Fatalf("parseFlags() = %v", err)
	}
	if cfg.Lines != 5 || cfg.Workers != 3 || cfg.Work != time.Millisecond || cfg.Queue != 1024 {
		t.Errorf("parseFlags() = %+v; want lines 5, workers 3, work 1ms, queue 1024", cfg)
	}
	for _, args := range [][]string{{"-lines", "x"}, {"extra"}} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) = nil error; want one", args)
		}
	}
}

func TestProgressLine(t *testing.T) {
	s := workpool.Stats{Workers: 8, Active: 5, Queued: 900, QueueCapacity: 1024, Completed: 250}
	got := progressLine(s, 1000, 1234.4)
	want := "progress: 250/1000 lines (25.0%), 1234 lines/s, queue 900/1024, active 5/8\n"
	if got != want {
		t.Errorf("progressLine() = %q; want %q", got, want)
	}
}

func TestGenerated(t *testing.T) {
	b, err := io.ReadAll(&generated{n: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := "record 1: the quick brown fox jumps over the lazy dog\nrecord 2: the quick brown fox jumps over the lazy dog\n"
	if string(b) != want {
		t.Errorf("generated = %q; want %q", b, want)
	}
}

// onTerminal runs the program with stderr on a pseudo-terminal and returns
// what the terminal showed and stdout.
func onTerminal(t *testing.T, cfg config, stdin io.Reader) (screen, stdout string) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer ptmx.Close()
	var scr bytes.Buffer
	read := make(chan struct{})
	go func() { defer close(read); io.Copy(&scr, ptmx) }()
	var out bytes.Buffer
	if err := run(context.Background(), cfg, stdin, &out, tty); err != nil {
		t.Fatalf("run() = %v", err)
	}
	tty.Close() // the reader then sees the end
	<-read
	// Nothing of the bar's outlives run: no goroutine drawing after it.
	goleak.VerifyNone(t)
	return scr.String(), out.String()
}

// TestProgressBarOnTerminal: on a terminal, progress is a bar redrawn in
// place (carriage returns, intermediate counts), with the rate and the
// elapsed and remaining time, and no plain lines.
func TestProgressBarOnTerminal(t *testing.T) {
	cfg := smallConfig()
	cfg.Lines = 10_000
	cfg.Work = 50 * time.Microsecond // long enough for several redraws
	s, stdout := onTerminal(t, cfg, nil)
	intermediate := false
	for _, m := range regexp.MustCompile(`(\d+)/10000`).FindAllStringSubmatch(s, -1) {
		if n, _ := strconv.Atoi(m[1]); n > 0 && n < 10000 {
			intermediate = true
		}
	}
	if strings.Count(s, "\r") < 3 || !intermediate {
		t.Errorf("terminal output has no intermediate redraws in place:\n%q", s)
	}
	for _, want := range []string{"lines/s", "%", "10000/10000"} {
		if !strings.Contains(s, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, s)
		}
	}
	if !regexp.MustCompile(`\[\d+[a-z]*:\d+[a-z]*\]`).MatchString(s) {
		t.Errorf("terminal output lacks [elapsed:remaining]:\n%q", s)
	}
	if strings.Contains(s, "progress: ") {
		t.Errorf("terminal output has plain progress lines:\n%q", s)
	}
	if !strings.Contains(stdout, "processed 10000/10000 lines") {
		t.Errorf("stdout:\n%s", stdout)
	}
}

// TestProgressSpinnerOnTerminal: with standard input, whose length is
// unknown, the terminal shows a count and a rate redrawn in place.
func TestProgressSpinnerOnTerminal(t *testing.T) {
	in, cfg := stdinRun(8000)
	s, stdout := onTerminal(t, cfg, strings.NewReader(in))
	if strings.Count(s, "\r") < 3 || !strings.Contains(s, "lines/s") || strings.Contains(s, "progress: ") {
		t.Errorf("terminal output is not a count redrawn in place:\n%q", s)
	}
	if !strings.Contains(stdout, "processed 8000 lines") {
		t.Errorf("stdout:\n%s", stdout)
	}
}

// TestStdinInput: -input - reads standard input, whose length is unknown.
func TestStdinInput(t *testing.T) {
	in, cfg := stdinRun(5000)
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), cfg, strings.NewReader(in), &stdout, &stderr); err != nil {
		t.Fatalf("run() = %v", err)
	}
	out := stdout.String()
	for _, want := range []string{"processed 5000 lines", "submitted 5000,", wantChecksum(t, strings.NewReader(in))} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if stderr.Len() == 0 {
		t.Error("no progress lines on stderr")
	}
	for line := range strings.Lines(stderr.String()) {
		if !strings.HasPrefix(line, "progress: ") || strings.Contains(line, "%") {
			t.Errorf("stderr line %q; want a progress line without a percentage", line)
		}
	}
}

// stdinRun returns n numbered lines and a config that reads them from
// standard input, with work long enough for progress reports.
func stdinRun(n int) (string, config) {
	var in strings.Builder
	for i := range n {
		fmt.Fprintf(&in, "line %d\n", i)
	}
	cfg := smallConfig()
	cfg.Input = "-"
	cfg.Work = 50 * time.Microsecond
	return in.String(), cfg
}
