// Command distributed shows pools on several machines sharing one durable
// queue: it starts an embedded JetStream server (or connects to -nats), runs
// two consumers ("replicas", each with its own connection and pool) on one
// durable consumer, enqueues jobs, some of which fail on their first attempt
// and are retried, and reports that every job completed exactly once. It
// serves Prometheus metrics on -metrics while it runs and prints them at the
// end.
//
// With -cluster 3 it starts three embedded servers instead and a stream with
// three replicas; with -kill-leader it also crashes the stream's leader a
// third of the way through, and reports that every job ran all the same and
// how many ran more than once (delivery is at least once).
//
//	go run . -jobs 2000
//	go run . -cluster 3 -kill-leader
//	go run . -nats nats://127.0.0.1:4222 -metrics 127.0.0.1:9464
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"

	"github.com/workpool-go/workpool"
	"github.com/workpool-go/workpool/natsq"
	"github.com/workpool-go/workpool/natsq/embedded"
)

// Job is the work item: render one thumbnail, say.
type Job struct {
	ID    int  `json:"id"`
	Flaky bool `json:"flaky,omitempty"` // fails on its first attempt
}

// config is what the flags set.
type config struct {
	natsURL  string // "" starts an embedded server
	cluster  int    // embedded servers in a cluster; 0 for one plain server
	kill     bool   // crash the stream leader a third of the way
	jobs     int
	workers  int
	flaky    int // every flaky-th job fails its first attempt; 0 for none
	metrics  string
	jobTime  time.Duration
	deadline time.Duration
}

// name is the program's name in usage and errors: os.Args[0] is a
// temporary path under go run.
const name = "distributed"

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		os.Exit(2) // parseFlags printed the problem
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// parseFlags reads the command line into a config and checks it. Usage and
// every error go to errOut, once; a bad value is an error that names the
// flag.
func parseFlags(args []string, errOut io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.Usage = func() {
		fmt.Fprintf(errOut, "usage: %s [flags]  (go run ./examples/distributed [flags])\n\n", name)
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.natsURL, "nats", "", "NATS URL to connect to; empty starts an embedded JetStream server")
	fs.IntVar(&cfg.cluster, "cluster", 0, "start this many embedded servers as a cluster (an odd number, at least 3), the stream with 3 replicas; 0: one server")
	fs.BoolVar(&cfg.kill, "kill-leader", false, "with -cluster: crash the stream's leader a third of the way through")
	fs.IntVar(&cfg.jobs, "jobs", 1000, "jobs to enqueue (at least 1)")
	fs.IntVar(&cfg.workers, "workers", 4, "workers per replica (at least 1)")
	fs.IntVar(&cfg.flaky, "flaky", 10, "every n-th job fails its first attempt (0: none)")
	fs.StringVar(&cfg.metrics, "metrics", "", "serve Prometheus metrics on this loopback address while running, e.g. 127.0.0.1:9464")
	fs.DurationVar(&cfg.jobTime, "job-time", time.Millisecond, "how long one job takes (0 or more)")
	fs.DurationVar(&cfg.deadline, "deadline", 2*time.Minute, "give up after this long (positive)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("%s: unexpected arguments %q; all settings are flags (-h lists them)", name, fs.Args())
		fmt.Fprintln(errOut, err)
		return cfg, err
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(name+": "+format, args...)) }
	if cfg.jobs < 1 {
		bad("-jobs must be at least 1, got %d", cfg.jobs)
	}
	if cfg.workers < 1 || cfg.workers > workpool.MaxWorkers {
		bad("-workers must be between 1 and %d, got %d", workpool.MaxWorkers, cfg.workers)
	}
	if cfg.flaky < 0 {
		bad("-flaky must be 0 (no flaky jobs) or more, got %d", cfg.flaky)
	}
	if cfg.jobTime < 0 {
		bad("-job-time must not be negative, got %v", cfg.jobTime)
	}
	if cfg.deadline <= 0 {
		bad("-deadline must be positive, got %v", cfg.deadline)
	}
	switch {
	case cfg.cluster != 0 && (cfg.cluster < 3 || cfg.cluster%2 == 0):
		bad("-cluster must be 0 (one server) or an odd number of at least 3, got %d: a stream with 3 replicas needs 3 servers, and an even number survives no more losses than one less", cfg.cluster)
	case cfg.cluster > 0 && cfg.natsURL != "":
		bad("-cluster starts embedded servers; it cannot be combined with -nats %s", cfg.natsURL)
	}
	if cfg.kill && cfg.cluster == 0 {
		bad("-kill-leader needs -cluster 3 (or more): with one server, losing it stops the queue")
	}
	err := errors.Join(errs...)
	if err != nil {
		fmt.Fprintln(errOut, err)
	}
	return cfg, err
}

// run is the whole demo; it returns an error unless every job completed
// exactly once.
func run(ctx context.Context, cfg config, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.deadline)
	defer cancel()
	url, cl, stopServers, err := startServers(cfg, out)
	if err != nil {
		return err
	}
	defer stopServers()
	reg := prometheus.NewRegistry()
	if cfg.metrics != "" {
		stopMetrics, err := serveMetrics(cfg.metrics, reg, out)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}

	qcfg := natsq.QueueConfig{
		Stream: "WORKPOOL_DEMO", Subjects: []string{"workpool.demo.>"}, Consumer: "demo-workers",
		AckWait: 5 * time.Second, MaxDeliver: 5, MaxAckPending: 256,
	}
	if cl != nil {
		qcfg.Replicas = 3
	}
	led := newLedger(cfg.jobs)
	handler := func(ctx context.Context, m natsq.Message[Job]) error {
		select {
		case <-time.After(cfg.jobTime): // the work
		case <-ctx.Done():
			return ctx.Err()
		}
		if m.Value.Flaky && m.Attempt == 1 {
			return errors.New("flaky: try again")
		}
		led.done(m.Value.ID)
		return nil
	}

	// Two replicas: each its own connection, pool and metrics.
	var replicas []*natsq.Consumer[Job]
	for _, name := range []string{"a", "b"} {
		nc, err := nats.Connect(url, nats.Name("replica-"+name), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		cons, err := natsq.Setup(ctx, js, qcfg)
		if err != nil {
			return err
		}
		m, err := natsq.NewPrometheusMetrics(prometheus.WrapRegistererWith(prometheus.Labels{"replica": name}, reg))
		if err != nil {
			return err
		}
		c, err := natsq.NewConsumer(js, cons, handler,
			natsq.WithMetrics(m),
			natsq.WithBackoff(func(int) time.Duration { return 50 * time.Millisecond }),
			natsq.WithFetchTimeout(250*time.Millisecond),
			natsq.WithPoolOptions(workpool.WithWorkers(cfg.workers), workpool.WithQueueSize(cfg.workers)))
		if err != nil {
			return err
		}
		replicas = append(replicas, c)
	}

	// The producer: its own connection, as if on another machine.
	nc, err := nats.Connect(url, nats.Name("producer"), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if st, err := js.Stream(ctx, qcfg.Stream); err == nil {
		if err := st.Purge(ctx); err != nil { // leftovers of an earlier run would spoil the report
			return err
		}
	}
	runCtx, stopReplicas := context.WithCancel(ctx)
	var wg sync.WaitGroup
	runErrs := make([]error, len(replicas))
	for i, c := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runErrs[i] = c.Run(runCtx)
		}()
	}
	start := time.Now()
	p, err := natsq.NewProducer[Job](js, "workpool.demo.thumbnail")
	if err != nil {
		stopReplicas()
		wg.Wait()
		return err
	}
	// Message IDs must be unique per job: the stream drops a repeated ID
	// within its duplicate window (2 minutes), even across runs, so the run
	// is part of the ID.
	runID := strconv.FormatInt(time.Now().UnixNano(), 36)
	items := make([]natsq.Item[Job], cfg.jobs)
	for i := range items {
		items[i] = natsq.Item[Job]{ID: fmt.Sprintf("%s-thumb-%d", runID, i), Value: Job{ID: i, Flaky: cfg.flaky > 0 && i%cfg.flaky == 0}}
	}
	killed := make(chan string, 1) // the report's line on the server it stopped
	if cfg.kill {
		go func() { killed <- killLeader(ctx, js, cl, qcfg.Stream, led, cfg.jobs) }()
	}
	// In a cluster, a batch that failed while a server was lost is published
	// again after a pause: its stored items are dropped as duplicates of
	// their IDs. With one server, an error is final.
	retries := 0
	for err = p.EnqueueAll(ctx, items); err != nil && cl != nil && ctx.Err() == nil; err = p.EnqueueAll(ctx, items) {
		retries++
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err == nil {
		select {
		case <-led.all:
		case <-ctx.Done():
			err = fmt.Errorf("jobs not all done: %w", ctx.Err())
		}
	}
	elapsed := time.Since(start)
	stopReplicas()
	wg.Wait()
	if err := errors.Join(append(runErrs, err)...); err != nil {
		return err
	}
	if cfg.kill {
		fmt.Fprintln(out, <-killed)
	}
	if retries > 0 {
		fmt.Fprintf(out, "the batch of jobs was published %d more times (stored jobs dropped as duplicates)\n", retries)
	}
	return report(out, cfg, replicas, led, elapsed, reg)
}

// startServers starts what cfg asks for, one embedded server or a cluster,
// and returns the URL to connect to, the cluster (nil unless -cluster) and
// a function that stops them; with -nats it starts nothing.
func startServers(cfg config, out io.Writer) (string, *embedded.Cluster, func(), error) {
	switch {
	case cfg.natsURL != "":
		return cfg.natsURL, nil, func() {}, nil
	case cfg.cluster > 0:
		cl, err := embedded.StartCluster(cfg.cluster, embedded.ClusterOptions{})
		if err != nil {
			return "", nil, nil, err
		}
		urls := cl.ClientURLs()
		fmt.Fprintf(out, "embedded JetStream cluster of %d servers at %s\n", cl.Size(), strings.Join(urls, " "))
		return strings.Join(urls, ","), cl, cl.Shutdown, nil
	}
	srv, err := embedded.Start(embedded.Options{})
	if err != nil {
		return "", nil, nil, err
	}
	fmt.Fprintf(out, "embedded JetStream server at %s\n", srv.ClientURL())
	return srv.ClientURL(), nil, srv.Shutdown, nil
}

// killLeader waits until a third of the jobs are done, crashes the stream's
// leader, waits for the others to elect a new one, and returns a line for
// the report.
func killLeader(ctx context.Context, js jetstream.JetStream, cl *embedded.Cluster, stream string, led *ledger, jobs int) string {
	select {
	case <-led.third:
	case <-ctx.Done():
		return "no server stopped: " + ctx.Err().Error()
	}
	leader, err := streamLeader(ctx, js, stream, "")
	if err != nil {
		return "no server stopped: " + err.Error()
	}
	i, _ := cl.Index(leader)
	done := led.completed()
	killed := time.Now()
	if err := cl.Kill(i); err != nil {
		return "no server stopped: " + err.Error()
	}
	next, err := streamLeader(ctx, js, stream, leader)
	if err != nil {
		return fmt.Sprintf("stopped %s, the stream leader, abruptly after %d of %d jobs; no new leader: %v", leader, done, jobs, err)
	}
	return fmt.Sprintf("stopped %s, the stream leader, abruptly after %d of %d jobs; %s leads since %v later",
		leader, done, jobs, next, time.Since(killed).Round(time.Millisecond))
}

// streamLeader polls the stream's info until it names a leader other than
// not, and returns its name.
func streamLeader(ctx context.Context, js jetstream.JetStream, stream, not string) (string, error) {
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := js.Stream(rctx, stream)
		if err == nil {
			var info *jetstream.StreamInfo
			if info, err = st.Info(rctx); err == nil && info.Cluster != nil && info.Cluster.Leader != "" && info.Cluster.Leader != not {
				cancel()
				return info.Cluster.Leader, nil
			}
		}
		cancel()
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// report prints what happened and fails unless every job completed exactly
// once.
func report(out io.Writer, cfg config, replicas []*natsq.Consumer[Job], led *ledger, elapsed time.Duration, reg *prometheus.Registry) error {
	missing, dups := led.check()
	fmt.Fprintf(out, "%d jobs in %v (%.0f jobs/s)\n", cfg.jobs, elapsed.Round(time.Millisecond), float64(cfg.jobs)/elapsed.Seconds())
	for i, c := range replicas {
		s := c.Stats()
		fmt.Fprintf(out, "replica %c: fetched %d, acked %d, naked %d, termed %d, redelivered %d, heartbeats %d, fetch requests %d\n",
			'a'+i, s.Fetched, s.Acked, s.TotalNaked(), s.TotalTermed(), s.Redelivered, s.Heartbeats, s.Fetches)
	}
	if err := printMetrics(out, reg); err != nil {
		return err
	}
	if cfg.cluster > 0 {
		// Across a leader's loss delivery is at least once: the jobs in
		// flight then may run again.
		if missing > 0 {
			return fmt.Errorf("%d jobs never completed (%d completed more than once)", missing, dups)
		}
		fmt.Fprintf(out, "every job ran (%d jobs); %d ran more than once\n", cfg.jobs, dups)
		return nil
	}
	if missing > 0 || dups > 0 {
		return fmt.Errorf("%d jobs never completed, %d completed more than once", missing, dups)
	}
	fmt.Fprintf(out, "every job completed exactly once (%d jobs)\n", cfg.jobs)
	return nil
}

// printMetrics prints the natsq series in the Prometheus text format.
func printMetrics(out io.Writer, reg *prometheus.Registry) error {
	mfs, err := reg.Gather()
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			return err
		}
	}
	fmt.Fprint(out, "metrics:\n", b.String())
	return nil
}

// serveMetrics serves reg on addr, which must be a loopback address, until
// the returned function is called.
func serveMetrics(addr string, reg *prometheus.Registry, out io.Writer) (func(), error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("-metrics %s: serve on a loopback address only", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	fmt.Fprintf(out, "metrics at http://%s/metrics\n", ln.Addr())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}

// ledger counts successful completions per job.
type ledger struct {
	mu    sync.Mutex
	count []int // guarded by mu
	left  int   // guarded by mu; jobs not yet completed
	all   chan struct{}
	third chan struct{} // closed when a third of the jobs completed
}

func newLedger(n int) *ledger {
	l := &ledger{count: make([]int, n), left: n, all: make(chan struct{}), third: make(chan struct{})}
	if n == 0 {
		close(l.all)
		close(l.third)
	}
	return l
}

// completed returns how many jobs completed.
func (l *ledger) completed() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.count) - l.left
}

func (l *ledger) done(id int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if id < 0 || id >= len(l.count) {
		return
	}
	l.count[id]++
	if l.count[id] == 1 {
		l.left--
		if l.left == 0 {
			close(l.all)
		}
		if done := len(l.count) - l.left; done == max(len(l.count)/3, 1) {
			close(l.third)
		}
	}
}

func (l *ledger) check() (missing, dups int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, n := range l.count {
		switch {
		case n == 0:
			missing++
		case n > 1:
			dups++
		}
	}
	return missing, dups
}
