package natsq_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/workpool-go/workpool"
	"github.com/workpool-go/workpool/natsq"
	"github.com/workpool-go/workpool/natsq/embedded"
)

// BenchmarkEndToEnd compares messages per second through the adapter with a
// bare nats.go fetch-and-ack loop doing the same no-op work, on one embedded
// server in one run. Each iteration is one message: b.N messages are
// published first (untimed), then consumed and acked (timed). Both hold the
// same number of messages at once: the bare loop fetches batches of that
// size, the adapter's pool has that capacity. Run with a fixed count, such
// as -benchtime=20000x, so both sides see the same backlog.
func BenchmarkEndToEnd(b *testing.B) {
	srv := startServer(b, embedded.Options{})
	for _, held := range []int{16, 64} {
		b.Run(fmt.Sprintf("bare/batch=%d", held), func(b *testing.B) {
			cons := benchQueue(b, srv)
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu := time.Now(), cpuTime()
			for got := 0; got < b.N; {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				// Never more than remain: a fetch for more would wait out its expiry.
				batch, err := cons.Fetch(min(held, b.N-got), jetstream.FetchContext(ctx))
				if err != nil {
					cancel()
					b.Fatal(err)
				}
				for m := range batch.Messages() {
					if err := m.Ack(); err != nil {
						b.Fatal(err)
					}
					got++
				}
				cancel()
			}
			report(b, time.Since(start), cpuTime()-cpu)
		})
		b.Run(fmt.Sprintf("natsq/workers=2/held=%d", held), func(b *testing.B) {
			cons := benchQueue(b, srv)
			_, js := connect(b, srv.ClientURL())
			var done atomic.Int64
			all := make(chan struct{})
			n := int64(b.N)
			c, err := natsq.NewConsumer(js, cons, func(ctx context.Context, m natsq.Message[[]byte]) error {
				if done.Add(1) == n {
					close(all)
				}
				return nil
			}, natsq.WithCodec[[]byte](natsq.Raw{}),
				natsq.WithPoolOptions(workpool.WithWorkers(2), workpool.WithQueueSize(held-2)))
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			ran := make(chan error, 1)
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu := time.Now(), cpuTime()
			go func() { ran <- c.Run(ctx) }()
			<-all
			elapsed, cpuUsed := time.Since(start), cpuTime()-cpu
			b.StopTimer()
			cancel()
			if err := <-ran; err != nil {
				b.Fatal(err)
			}
			report(b, elapsed, cpuUsed)
			b.ReportMetric(float64(b.N)/float64(c.Stats().Fetches), "msgs/fetch")
		})
	}
}

// BenchmarkPublish measures Producer.Enqueue's latency: one publish,
// waiting for the stream's acknowledgement, per iteration (ns/op), on one
// server and on a three-server cluster with one and three stream replicas.
// With three, the leader answers once a majority has stored the message.
// The cluster's servers talk through embedded's forwarding gates, an extra
// in-process hop that a real cluster does not have; compare replicas=1 and
// replicas=3 on the cluster with each other.
func BenchmarkPublish(b *testing.B) {
	srv := startServer(b, embedded.Options{})
	cl, err := embedded.StartCluster(3, embedded.ClusterOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Shutdown)
	for _, bc := range []struct {
		name     string
		url      string
		replicas int
	}{
		{"server=1/replicas=1", srv.ClientURL(), 1},
		{"cluster=3/replicas=1", strings.Join(cl.ClientURLs(), ","), 1},
		{"cluster=3/replicas=3", strings.Join(cl.ClientURLs(), ","), 3},
	} {
		b.Run(bc.name, func(b *testing.B) {
			_, js := connect(b, bc.url)
			name := "PUB" + strconv.FormatInt(time.Now().UnixNano(), 36)
			if _, err := natsq.Setup(context.Background(), js, natsq.QueueConfig{
				Stream: name, Subjects: []string{name + ".>"}, Consumer: "workers", Replicas: bc.replicas,
			}); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = js.DeleteStream(context.Background(), name) })
			p, err := natsq.NewProducer[[]byte](js, name+".job", natsq.WithCodec[[]byte](natsq.Raw{}))
			if err != nil {
				b.Fatal(err)
			}
			payload := []byte("0123456789abcdef")
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := p.Enqueue(context.Background(), strconv.Itoa(i), payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchQueue creates a fresh queue (stream and consumer) and fills it with
// b.N small messages.
func benchQueue(b *testing.B, srv *embedded.Server) jetstream.Consumer {
	b.Helper()
	_, js := connect(b, srv.ClientURL())
	name := "BENCH" + strconv.FormatInt(time.Now().UnixNano(), 36)
	cons, err := natsq.Setup(context.Background(), js, natsq.QueueConfig{
		Stream: name, Subjects: []string{name + ".>"}, Consumer: "workers",
		MaxAckPending: 10000, Storage: jetstream.MemoryStorage,
	})
	if err != nil {
		b.Fatal(err)
	}
	p, err := natsq.NewProducer[[]byte](js, name+".job", natsq.WithCodec[[]byte](natsq.Raw{}))
	if err != nil {
		b.Fatal(err)
	}
	items := make([]natsq.Item[[]byte], b.N)
	for i := range items {
		items[i] = natsq.Item[[]byte]{ID: strconv.Itoa(i), Value: []byte("0123456789abcdef")}
	}
	if err := p.EnqueueAll(context.Background(), items); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = js.DeleteStream(context.Background(), name) })
	return cons
}

// report gives throughput and, because the machine is shared and wall time
// noisy, the process's CPU time per message (client and server together).
func report(b *testing.B, elapsed, cpu time.Duration) {
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/1e3, "cpu-µs/msg")
}

// cpuTime is the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
