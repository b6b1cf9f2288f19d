package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/workpool-go/workpool"
)

// Line is one job: a line of input and its 1-based number.
type Line struct {
	N    int
	Text string
}

// run processes every line of the input on a pool and prints a summary to
// stdout. When ctx ends it stops reading, lets the queued lines finish, prints
// the summary of what was done and returns ctx's error. stdin is the input
// for -input -.
func run(ctx context.Context, cfg config, stdin io.Reader, stdout, stderr io.Writer) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	input, total, err := openInput(cfg, stdin)
	if err != nil {
		return err
	}
	defer input.Close()

	var sum atomic.Uint64 // order-independent: the sum of every line's digest
	pool, err := workpool.New(func(ctx context.Context, l Line) error {
		return process(ctx, l, cfg.Work, &sum)
	},
		workpool.WithWorkers(cfg.Workers),
		workpool.WithQueueSize(cfg.Queue),
		workpool.WithShutdownTimeout(cfg.ShutdownTimeout),
	)
	if err != nil {
		return err
	}
	pool.Start()

	start := time.Now()
	stopProgress := startProgress(cfg.Progress, stderr, pool, total)
	fed, waited, feedErr := feed(ctx, pool, input)
	// Drain what is queued even when ctx has ended: a second signal is not
	// needed to finish a bounded queue, and WithShutdownTimeout bounds it.
	shutdownErr := pool.Shutdown(context.WithoutCancel(ctx))
	stopProgress()
	elapsed := time.Since(start)

	s := pool.Stats()
	of := ""
	if total >= 0 {
		of = fmt.Sprintf("/%d", total)
	}
	fmt.Fprintf(stdout, "processed %d%s lines in %v (%.0f lines/s) on %d workers, queue of %d\n",
		s.Completed, of, elapsed.Round(time.Millisecond), perSecond(s.Completed, elapsed), s.Workers, s.QueueCapacity)
	fmt.Fprintf(stdout, "submitted %d, failed %d, dropped %d, refused %d\n", fed, s.Failed, s.Dropped, s.Rejected)
	fmt.Fprintf(stdout, "the producer spent %v (%.0f%%) in SubmitWait: waiting for room instead of dropping\n",
		waited.Round(time.Millisecond), 100*waited.Seconds()/max(elapsed.Seconds(), 1e-9))
	fmt.Fprintf(stdout, "checksum %016x\n", sum.Load())

	if shutdownErr != nil {
		shutdownErr = fmt.Errorf("shutdown: %w", shutdownErr)
	}
	return errors.Join(feedErr, shutdownErr)
}

// openInput returns the input and its number of lines: the file cfg.Input,
// counted first, standard input for "-" (its length unknown: -1), or
// cfg.Lines generated lines.
func openInput(cfg config, stdin io.Reader) (io.ReadCloser, int, error) {
	switch cfg.Input {
	case "":
		return io.NopCloser(&generated{n: cfg.Lines}), cfg.Lines, nil
	case "-":
		return io.NopCloser(stdin), -1, nil
	}
	f, err := os.Open(cfg.Input)
	if err != nil {
		return nil, 0, err
	}
	n, err := countLines(f)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("reading %s: %w", cfg.Input, err)
	}
	return f, n, nil
}

// feed submits every line of r with SubmitWait, which blocks while the queue
// is full. It returns how many lines it submitted and how long it spent in
// SubmitWait.
func feed(ctx context.Context, pool *workpool.Pool[Line], r io.Reader) (fed int, waited time.Duration, err error) {
	sc := newScanner(r)
	for sc.Scan() {
		// SubmitWait accepts a job whenever there is room, even after ctx
		// ended; check ctx so an interrupted run stops reading promptly.
		if err := ctx.Err(); err != nil {
			return fed, waited, fmt.Errorf("stopped after %d lines: %w", fed, err)
		}
		begin := time.Now()
		err := pool.SubmitWait(ctx, Line{N: fed + 1, Text: sc.Text()})
		waited += time.Since(begin)
		if err != nil {
			return fed, waited, fmt.Errorf("submitting line %d: %w", fed+1, err)
		}
		fed++
	}
	if err := sc.Err(); err != nil {
		return fed, waited, fmt.Errorf("reading input after %d lines: %w", fed, err)
	}
	return fed, waited, nil
}

// process is the handler: it hashes the line, waits the simulated latency,
// and adds the digest to sum.
func process(ctx context.Context, l Line, work time.Duration, sum *atomic.Uint64) error {
	if work > 0 {
		t := time.NewTimer(work)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	sum.Add(digest(l.Text))
	return nil
}

// digest is the first 8 bytes of the line's SHA-256.
func digest(text string) uint64 {
	h := sha256.Sum256([]byte(text))
	return binary.BigEndian.Uint64(h[:8])
}

// startProgress reports progress to w until stop is called; stop returns
// once the reporter has exited. On a terminal it draws a bar that updates in
// place, with the rate and the time left; elsewhere (a file, a pipe, a log
// collector) it prints a plain line every interval.
func startProgress(every time.Duration, w io.Writer, pool *workpool.Pool[Line], total int) (stop func()) {
	if every <= 0 {
		return func() {}
	}
	if isTerminal(w) {
		return startBar(w, pool, total)
	}
	quit, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(every)
		defer t.Stop()
		var last uint64
		lastAt := time.Now()
		for {
			select {
			case <-quit:
				return
			case now := <-t.C:
				s := pool.Stats()
				io.WriteString(w, progressLine(s, total, perSecond(s.Completed-last, now.Sub(lastAt))))
				last, lastAt = s.Completed, now
			}
		}
	}()
	return func() { close(quit); <-exited }
}

// progressLine formats one progress report; total < 0 means unknown.
func progressLine(s workpool.Stats, total int, rate float64) string {
	if total < 0 {
		return fmt.Sprintf("progress: %d lines, %.0f lines/s, queue %d/%d, active %d/%d\n",
			s.Completed, rate, s.Queued, s.QueueCapacity, s.Active, s.Workers)
	}
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(s.Completed) / float64(total)
	}
	return fmt.Sprintf("progress: %d/%d lines (%.1f%%), %.0f lines/s, queue %d/%d, active %d/%d\n",
		s.Completed, total, pct, rate, s.Queued, s.QueueCapacity, s.Active, s.Workers)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// barRefresh is how often the bar reads the pool's counters.
const barRefresh = 100 * time.Millisecond

// startBar draws a progress bar on the terminal w: lines done out of total
// (a spinner with the count when total is unknown), lines per second and
// the time left, redrawn in place.
func startBar(w io.Writer, pool *workpool.Pool[Line], total int) (stop func()) {
	bar := progressbar.NewOptions64(int64(total),
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("lines"),
		progressbar.OptionSetItsString("lines"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(barRefresh),
		progressbar.OptionSetRenderBlankState(true),
		// No spinner goroutine for an unknown total: our ticker redraws.
		progressbar.OptionSetSpinnerChangeInterval(0),
	)
	quit, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(barRefresh)
		defer t.Stop()
		for {
			select {
			case <-quit:
				bar.Set64(int64(pool.Stats().Completed))
				bar.Exit() // keeps the last state on screen
				io.WriteString(w, "\n")
				return
			case <-t.C:
				bar.Set64(int64(pool.Stats().Completed))
			}
		}
	}()
	return func() { close(quit); <-exited }
}

func perSecond(n uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// newScanner reads lines of up to 1 MiB.
func newScanner(r io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	return sc
}

// countLines counts the lines bufio.Scanner will return from r.
func countLines(r io.Reader) (int, error) {
	sc := newScanner(r)
	n := 0
	for sc.Scan() {
		n++
	}
	return n, sc.Err()
}

// generated is an io.Reader of n numbered lines, made as they are read so a
// large input costs no memory.
type generated struct {
	n, next int
	buf     []byte // the current line
	pending []byte // the part of buf not yet read
}

func (g *generated) Read(p []byte) (int, error) {
	written := 0
	for written < len(p) {
		if len(g.pending) == 0 {
			if g.next == g.n {
				break
			}
			g.next++
			g.buf = fmt.Appendf(g.buf[:0], "record %d: the quick brown fox jumps over the lazy dog\n", g.next)
			g.pending = g.buf
		}
		c := copy(p[written:], g.pending)
		g.pending = g.pending[c:]
		written += c
	}
	if written == 0 {
		return 0, io.EOF
	}
	return written, nil
}
