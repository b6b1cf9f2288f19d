package natsq_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/workpool-go/workpool/natsq"
	"github.com/workpool-go/workpool/natsq/embedded"
)

// clusterTestEnv enables TestClusterLeaderLoss. It takes a three-server
// cluster and two elections, so it has its own bounded step in ci.sh rather
// than a place in every `go test ./...`.
const clusterTestEnv = "NATSQ_CLUSTER_TEST"

// Three servers, an R3 file stream, two replicas consuming and four
// producers publishing 5,000 jobs. A fifth of the way, the stream's leader
// is killed (cut off, then stopped: no handover, as in a crash), and once
// the other two have elected a new leader it is restarted on its store;
// three fifths of the way, a second server, a follower of the stream, is
// restarted as in a rolling deploy (stopped gracefully). Jobs are published
// in three tranches, the second released at the kill and the third at the
// restart, so producers publish into the leaderless cluster and the pools
// still have work across both. Every job whose Enqueue returned nil
// completes, and repeats stay within the bound the README documents: the
// fleet's capacity per disruption, plus one per retried publish.
func TestClusterLeaderLoss(t *testing.T) {
	if os.Getenv(clusterTestEnv) == "" {
		t.Skipf("set %s=1 to run: it has its own step in natsq/ci.sh", clusterTestEnv)
	}
	const (
		n           = 5000
		producers   = 4
		workers     = 4
		queueSize   = 4
		replicas    = 2
		disruptions = 2
		fleet       = replicas * (workers + queueSize)
		ackWait     = 2 * time.Second
	)
	start := time.Now()
	cl, err := embedded.StartCluster(3, embedded.ClusterOptions{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("StartCluster: %v", err)
	}
	t.Cleanup(cl.Shutdown)
	urls := strings.Join(cl.ClientURLs(), ",")
	cfg := natsq.QueueConfig{AckWait: ackWait, Replicas: 3, Storage: jetstream.FileStorage}
	_, js := connect(t, urls)
	queue(t, js, cfg)
	t.Logf("cluster formed, queue set up in %v", time.Since(start).Round(time.Millisecond))

	l := newLedger(n)
	var pause pauses
	var cs []*natsq.Consumer[job]
	var stops []func() (time.Duration, error)
	for range replicas {
		_, js := connect(t, urls)
		c := newConsumer(t, js, queue(t, js, cfg), func(ctx context.Context, m natsq.Message[job]) error {
			pause.mark(time.Now())
			l.done(m.Value.ID)
			return nil
		}, fast(workers, queueSize)...)
		cs = append(cs, c)
		stops = append(stops, run(t, c))
	}

	// Producers: Enqueue retries inside itself while the cluster has no
	// leader; an Enqueue that still fails is counted and tried again with
	// the same ID. Only IDs whose Enqueue returned nil enter acked.
	var acked sync.Map
	var retried, inside atomic.Int64
	var wg sync.WaitGroup
	pubCtx, stopPub := context.WithTimeout(context.Background(), 60*time.Second)
	defer stopPub()
	releaseB, releaseC := make(chan struct{}), make(chan struct{})
	tranche := func(i int) <-chan struct{} {
		switch {
		case i >= 4*n/5:
			return releaseC
		case i >= 2*n/5:
			return releaseB
		}
		return nil
	}
	for p := range producers {
		_, js := connect(t, urls)
		prod, err := natsq.NewProducer[job](js, "jobs.cluster", natsq.WithLogger(slog.New(&countWarnings{n: &inside})))
		if err != nil {
			t.Fatalf("NewProducer: %v", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < n; i += producers {
				if ch := tranche(i); ch != nil {
					select {
					case <-ch:
					case <-pubCtx.Done():
						return
					}
				}
				id := fmt.Sprintf("c-%d", i)
				for pubCtx.Err() == nil {
					ctx, cancel := context.WithTimeout(pubCtx, 5*time.Second)
					_, err := prod.Enqueue(ctx, id, job{ID: id})
					cancel()
					if err == nil {
						acked.Store(id, true)
						break
					}
					retried.Add(1)
				}
			}
		}()
	}

	// The leader's loss, a fifth of the way.
	l.waitFor(t, n/5, 60*time.Second)
	first := leaderOf(t, js, cl, "")
	killed := time.Now()
	if err := cl.Kill(first); err != nil {
		t.Fatalf("Kill(%d): %v", first, err)
	}
	close(releaseB)
	eventually(t, 30*time.Second, "a new stream leader", func() bool {
		i, ok := cl.StreamLeader("JOBS")
		return ok && i != first
	})
	t.Logf("killed stream leader %s at %d completions; new leader after %v",
		cl.Name(first), l.total.Load(), time.Since(killed).Round(time.Millisecond))
	restarting := time.Now()
	if err := cl.Restart(first); err != nil {
		t.Fatalf("Restart(%d): %v", first, err)
	}
	t.Logf("restarted %s in %v", cl.Name(first), time.Since(restarting).Round(time.Millisecond))

	// A second server is restarted, three fifths of the way, as a rolling
	// deploy does: once every replica has caught up, stopped gracefully,
	// handing over what it leads. It is a follower of the stream, and may
	// lead the consumer.
	l.waitFor(t, 3*n/5, 60*time.Second)
	eventually(t, 30*time.Second, "every replica of stream and consumer current", func() bool {
		ok, _ := health(js)
		return ok
	})
	leader, consLeader := leaderOf(t, js, cl, ""), leaderOf(t, js, cl, "workers")
	second := (first + 1) % cl.Size()
	if second == leader {
		second = (second + 1) % cl.Size()
	}
	if err := cl.Stop(second); err != nil {
		t.Fatalf("Stop(%d): %v", second, err)
	}
	close(releaseC)
	restarting = time.Now()
	if err := cl.Restart(second); err != nil {
		t.Fatalf("Restart(%d): %v", second, err)
	}
	t.Logf("stopped and restarted %s (consumer leader: %v) at %d completions, in %v", cl.Name(second), second == consLeader, l.total.Load(), time.Since(restarting).Round(time.Millisecond))

	wg.Wait()
	if pubCtx.Err() != nil {
		_, state := health(js)
		t.Fatalf("producers gave up: %v; %d of %d published, %d completed; %s", pubCtx.Err(), count(&acked), n, l.total.Load(), state)
	}
	var ids []string
	acked.Range(func(k, _ any) bool { ids = append(ids, k.(string)); return true })
	if len(ids) != n {
		t.Fatalf("%d of %d publishes acknowledged", len(ids), n)
	}
	l.wait(t, 60*time.Second)
	t.Logf("all done at %v", time.Since(start).Round(time.Millisecond))
	l.atLeastOnce(t, ids)
	eventually(t, 30*time.Second, "queue drained", drained(t, js))
	t.Logf("drained at %v", time.Since(start).Round(time.Millisecond))
	for i, stop := range stops {
		if took, err := stop(); err != nil {
			t.Errorf("consumer %d: Run = %v after %v; want nil", i, err, took)
		}
	}

	repeats := l.total.Load() - n
	bound := disruptions*fleet + retried.Load()
	longest, at := pause.longest()
	t.Logf("%d jobs, %d repeats (bound %d); Enqueue retried %d times by the producers, %d publish attempts retried inside Enqueue; longest pause between completions %v, starting %v after the kill; whole test %v",
		n, repeats, bound, retried.Load(), inside.Load(), longest.Round(time.Millisecond), at.Sub(killed).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	for i, c := range cs {
		s := c.Stats()
		t.Logf("consumer %d: fetched %d, acked %d, redelivered %d, fetch errors %d, ack failures %d", i, s.Fetched, s.Acked, s.Redelivered, s.FetchErrors, s.AckFailures)
	}
	if repeats > bound {
		t.Errorf("%d jobs ran more than once; want at most %d (%d disruptions x fleet capacity %d + %d retried publishes)",
			repeats, bound, disruptions, fleet, retried.Load())
	}
}

// leaderOf returns the index of the server that leads the JOBS stream, or
// its consumer if consumer is not "", as JetStream's info names it, waiting
// while there is none.
func leaderOf(t *testing.T, js jetstream.JetStream, cl *embedded.Cluster, consumer string) int {
	t.Helper()
	var leader int
	eventually(t, 30*time.Second, "JOBS has a leader", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		var ci *jetstream.ClusterInfo
		if consumer == "" {
			st, err := js.Stream(ctx, "JOBS")
			if err != nil {
				return false
			}
			info, err := st.Info(ctx)
			if err != nil {
				return false
			}
			ci = info.Cluster
		} else {
			cons, err := js.Consumer(ctx, "JOBS", consumer)
			if err != nil {
				return false
			}
			info, err := cons.Info(ctx)
			if err != nil {
				return false
			}
			ci = info.Cluster
		}
		if ci == nil {
			return false
		}
		i, ok := cl.Index(ci.Leader)
		leader = i
		return ok
	})
	return leader
}

// health reports whether the JOBS stream and its consumer have a leader and
// two current replicas, and describes their state.
func health(js jetstream.JetStream) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var cis [2]*jetstream.ClusterInfo
	st, err := js.Stream(ctx, "JOBS")
	if err != nil {
		return false, "stream: " + err.Error()
	}
	si, err := st.Info(ctx)
	if err != nil {
		return false, "stream info: " + err.Error()
	}
	cons, err := js.Consumer(ctx, "JOBS", "workers")
	if err != nil {
		return false, "consumer: " + err.Error()
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		return false, "consumer info: " + err.Error()
	}
	cis[0], cis[1] = si.Cluster, ci.Cluster
	ok, state := true, ""
	for i, c := range cis {
		state += [2]string{"stream", "; consumer"}[i]
		if c == nil || c.Leader == "" {
			ok, state = false, state+" without a leader"
			continue
		}
		state += " led by " + c.Leader
		current := 0
		for _, r := range c.Replicas {
			state += fmt.Sprintf(", %s current %v lag %d", r.Name, r.Current, r.Lag)
			if r.Current && !r.Offline {
				current++
			}
		}
		ok = ok && current == 2
	}
	return ok, state
}

// count returns the number of keys in m.
func count(m *sync.Map) int {
	k := 0
	m.Range(func(_, _ any) bool { k++; return true })
	return k
}

// waitFor waits until at least k completions, repeats included.
func (l *ledger) waitFor(t *testing.T, k int, limit time.Duration) {
	t.Helper()
	eventually(t, limit, fmt.Sprintf("%d completions", k), func() bool { return l.total.Load() >= int64(k) })
}

// pauses finds the longest time between two consecutive completions.
type pauses struct {
	mu   sync.Mutex
	last time.Time     // guarded by mu
	max  time.Duration // guarded by mu
	at   time.Time     // guarded by mu; when the longest pause began
}

func (p *pauses) mark(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.last.IsZero() && now.Sub(p.last) > p.max {
		p.max, p.at = now.Sub(p.last), p.last
	}
	p.last = now
}

func (p *pauses) longest() (time.Duration, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.max, p.at
}

// countWarnings is a slog.Handler that counts warnings: the producer logs
// one for each publish attempt it retries.
type countWarnings struct{ n *atomic.Int64 }

func (h *countWarnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h *countWarnings) Handle(context.Context, slog.Record) error {
	h.n.Add(1)
	return nil
}
func (h *countWarnings) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countWarnings) WithGroup(string) slog.Handler      { return h }
