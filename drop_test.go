package workpool_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/workpool-go/workpool"
)

// recorder is a slog.Handler that keeps every record, at every level.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record // guarded by mu
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec.Clone())
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

// find returns the records with msg at level.
func (r *recorder) find(level slog.Level, msg string) []slog.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []slog.Record
	for _, rec := range r.records {
		if rec.Level == level && rec.Message == msg {
			out = append(out, rec)
		}
	}
	return out
}

func attrs(rec slog.Record) map[string]slog.Value {
	m := map[string]slog.Value{}
	rec.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value; return true })
	return m
}

// TestDropErrorReasons: OnDrop gets a *DropError whose Reason is the metric
// label's word for each way a job is dropped, and errors.Is still matches
// the underlying error.
func TestDropErrorReasons(t *testing.T) {
	type got struct {
		reason workpool.DropReason
		err    error
	}
	collect := func() (workpool.Option, func() []got) {
		var mu sync.Mutex
		var all []got
		return workpool.OnDrop(func(n int, err error) {
				var de *workpool.DropError
				if !errors.As(err, &de) {
					t.Errorf("OnDrop got %T (%v); want a *DropError", err, err)
					return
				}
				mu.Lock()
				all = append(all, got{de.Reason, err})
				mu.Unlock()
			}), func() []got {
				mu.Lock()
				defer mu.Unlock()
				return all
			}
	}
	check := func(t *testing.T, all []got, n int, reason workpool.DropReason, label string, is error) {
		t.Helper()
		if len(all) != n {
			t.Fatalf("%d drops; want %d", len(all), n)
		}
		for _, g := range all {
			if g.reason != reason || g.reason.String() != label || !errors.Is(g.err, is) {
				t.Errorf("drop: reason %v (%q), err %v; want %q and an error matching %v", g.reason, g.reason.String(), g.err, label, is)
			}
		}
	}

	t.Run("evicted", func(t *testing.T) {
		opt, drops := collect()
		p := newPool(t, func(ctx context.Context, n int) error { return nil },
			opt, workpool.WithQueueSize(1), workpool.WithDropPolicy(workpool.DropOldest))
		for i := range 3 {
			if err := p.Submit(i); err != nil {
				t.Fatal(err)
			}
		}
		check(t, drops(), 2, workpool.ReasonEvicted, "evicted", workpool.ErrQueueFull)
	})
	t.Run("closed", func(t *testing.T) {
		opt, drops := collect()
		p := newPool(t, func(ctx context.Context, n int) error { return nil }, opt)
		_ = p.Submit(1)
		shutdown(t, p) // never started
		check(t, drops(), 1, workpool.ReasonClosed, "closed", workpool.ErrClosed)
	})
	t.Run("shutdown", func(t *testing.T) {
		opt, drops := collect()
		release := make(chan struct{})
		p := newPool(t, func(ctx context.Context, n int) error { <-release; return nil }, opt, workpool.WithWorkers(1))
		defer close(release)
		p.Start()
		for i := range 3 {
			_ = p.Submit(i)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if err := p.Shutdown(ctx); err != context.DeadlineExceeded {
			t.Fatalf("Shutdown = %v; want DeadlineExceeded", err)
		}
		all := drops()
		if len(all) < 2 { // the first job may or may not have started
			t.Fatalf("%d drops; want 2 or 3", len(all))
		}
		check(t, all, len(all), workpool.ReasonShutdown, "shutdown", context.DeadlineExceeded)
	})
	t.Run("canceled", func(t *testing.T) {
		opt, drops := collect()
		base, cancel := context.WithCancel(context.Background())
		p := newPool(t, func(ctx context.Context, n int) error { return nil }, opt, workpool.WithContext(base))
		_ = p.Submit(1)
		cancel()
		_ = p.Shutdown(context.Background())
		check(t, drops(), 1, workpool.ReasonCanceled, "canceled", context.Canceled)
	})
}

// TestPanicNeverSilent: with neither OnError nor a logger, a panic is
// reported through slog.Default at Error level, with its value and stack;
// OnError or a logger takes it instead, and a discarding logger silences it.
func TestPanicNeverSilent(t *testing.T) {
	def := &recorder{}
	old := slog.Default()
	slog.SetDefault(slog.New(def))
	defer slog.SetDefault(old)

	run := func(t *testing.T, opts ...workpool.Option) {
		t.Helper()
		p := newPool(t, func(ctx context.Context, n int) error { panic("boom") }, opts...)
		p.Start()
		if err := p.Submit(1); err != nil {
			t.Fatal(err)
		}
		shutdown(t, p)
	}
	const msg = "workpool job panicked"

	run(t)
	recs := def.find(slog.LevelError, msg)
	if len(recs) != 1 {
		t.Fatalf("%d Error records %q on slog.Default; want 1", len(recs), msg)
	}
	a := attrs(recs[0])
	if a["panic"].String() != "boom" || !strings.Contains(a["stack"].String(), "goroutine") {
		t.Errorf("record attrs %v; want the panic value and a stack", a)
	}

	own := &recorder{}
	run(t, workpool.WithLogger(slog.New(own)))
	if n := len(own.find(slog.LevelError, msg)); n != 1 {
		t.Errorf("%d Error records on the pool's logger; want 1", n)
	}
	run(t, workpool.OnError(func(int, error) {}))
	run(t, workpool.WithLogger(slog.New(slog.DiscardHandler)))
	if n := len(def.find(slog.LevelError, msg)); n != 1 {
		t.Errorf("%d records on slog.Default in all; want only the first run's", n)
	}
}

// TestDropsLoggedOnce: a Shutdown that drops 86 jobs logs one Warn line with
// the count per reason; the drops themselves are at Debug, with the job.
func TestDropsLoggedOnce(t *testing.T) {
	rec := &recorder{}
	release := make(chan struct{})
	p := newPool(t, func(ctx context.Context, n int) error { <-release; return nil },
		workpool.WithWorkers(1), workpool.WithQueueSize(100), workpool.WithLogger(slog.New(rec)))
	defer close(release)
	p.Start()
	for i := range 87 {
		if err := p.Submit(i); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "the first job to start", func() bool { return p.Stats().Active == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_ = p.Shutdown(ctx)
	_ = p.Shutdown(ctx) // a second call logs nothing more

	warns := rec.find(slog.LevelWarn, "workpool dropped jobs")
	if len(warns) != 1 {
		t.Fatalf("%d summary lines; want 1", len(warns))
	}
	if a := attrs(warns[0]); a["shutdown"].Uint64() != 86 || a["total"].Uint64() != 86 {
		t.Errorf("summary attrs %v; want shutdown=86 total=86", a)
	}
	debug := rec.find(slog.LevelDebug, "workpool dropped a job")
	if len(debug) != 86 {
		t.Errorf("%d Debug drop lines; want 86", len(debug))
	}
	for _, d := range debug {
		if _, ok := attrs(d)["job"]; !ok {
			t.Errorf("drop line without the job: %v", attrs(d))
			break
		}
	}
	if n := len(rec.find(slog.LevelWarn, "workpool dropped a job")); n != 0 {
		t.Errorf("%d per-drop Warn lines; want none", n)
	}
}

// TestDropsLoggedOnBaseStop: a hard stop by the base context, with no
// Shutdown call, logs its summary too; and a shutdown logs only its own
// drops, not evictions from before.
func TestDropsLoggedOnBaseStop(t *testing.T) {
	t.Run("base stop", func(t *testing.T) {
		rec := &recorder{}
		base, cancel := context.WithCancel(context.Background())
		defer cancel()
		p := newPool(t, func(ctx context.Context, n int) error { return nil },
			workpool.WithContext(base), workpool.WithLogger(slog.New(rec)))
		for i := range 49 {
			if err := p.Submit(i); err != nil {
				t.Fatal(err)
			}
		}
		cancel()
		waitUntil(t, "the summary line", func() bool { return len(rec.find(slog.LevelWarn, "workpool dropped jobs")) > 0 })
		warns := rec.find(slog.LevelWarn, "workpool dropped jobs")
		if a := attrs(warns[0]); len(warns) != 1 || a["canceled"].Uint64() != 49 || a["total"].Uint64() != 49 {
			t.Errorf("%d summary lines, first %v; want one with canceled=49 total=49", len(warns), a)
		}
	})
	t.Run("evictions before shutdown", func(t *testing.T) {
		rec := &recorder{}
		p := newPool(t, func(ctx context.Context, n int) error { return nil }, workpool.WithQueueSize(1),
			workpool.WithDropPolicy(workpool.DropOldest), workpool.WithLogger(slog.New(rec)))
		for i := range 3 {
			_ = p.Submit(i) // two evictions, long before the shutdown
		}
		p.Start()
		shutdown(t, p)
		if n := len(rec.find(slog.LevelWarn, "workpool dropped jobs")); n != 0 {
			t.Errorf("%d summary lines after a shutdown that dropped nothing; want none", n)
		}
	})
}

// TestDropErrorIsTheHooks: a hook that changes the *DropError it got does
// not change what the pool or other hooks see.
func TestDropErrorIsTheHooks(t *testing.T) {
	var seen []string
	mk := func() *workpool.Pool[int] {
		return newPool(t, func(ctx context.Context, n int) error { return nil },
			workpool.WithQueueSize(1), workpool.WithDropPolicy(workpool.DropOldest),
			workpool.OnDrop(func(n int, err error) {
				var de *workpool.DropError
				if !errors.As(err, &de) {
					t.Fatalf("OnDrop got %T", err)
				}
				seen = append(seen, de.Reason.String()+":"+strconv.FormatBool(errors.Is(err, workpool.ErrQueueFull)))
				de.Reason, de.Err = 99, errors.New("mine") // must not leak into the next drop
			}))
	}
	p1, p2 := mk(), mk()
	for i := range 3 {
		_ = p1.Submit(i)
		_ = p2.Submit(i)
	}
	want := []string{"evicted:true", "evicted:true", "evicted:true", "evicted:true"}
	if strings.Join(seen, " ") != strings.Join(want, " ") {
		t.Errorf("hooks saw %v; want %v", seen, want)
	}
}
