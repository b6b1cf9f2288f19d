package embedded_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/workpool-go/workpool/natsq/embedded"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// createStream creates a stream, retrying for a while when the meta leader
// cannot place its replicas yet. Right after a cluster is ready (every
// server caught up, the leader seeing all peers, as nats-server's own tests
// wait for), a meta leader that changes or has not had a peer's first
// statistics answers "no suitable peers for placement, peer offline"
// (error 10005); CI saw it once in many runs.
func createStream(t *testing.T, js jetstream.JetStream, cfg jetstream.StreamConfig) jetstream.Stream {
	t.Helper()
	const noPeers = 10005
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := js.CreateStream(context.Background(), cfg)
		var apiErr *jetstream.APIError
		if err == nil {
			return s
		}
		if !errors.As(err, &apiErr) || apiErr.ErrorCode != noPeers || time.Now().After(deadline) {
			t.Fatalf("CreateStream: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // a condition of the server's, with no event to wait on
	}
}

func TestStartClusterRejectsBadSize(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{
		{0, "embedded: cluster size must be at least 1, got 0"},
		{-3, "embedded: cluster size must be at least 1, got -3"},
		{2, "embedded: cluster size must be odd, got 2"},
		{4, "embedded: cluster size must be odd, got 4"},
	} {
		c, err := embedded.StartCluster(tc.n, embedded.ClusterOptions{})
		if err == nil {
			c.Shutdown()
			t.Errorf("StartCluster(%d) = nil error; want %q", tc.n, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("StartCluster(%d) = %v; want %q", tc.n, err, tc.want)
		}
	}
}

// startCluster starts a cluster that the test shuts down at its end.
func startCluster(t *testing.T, n int, opts embedded.ClusterOptions) *embedded.Cluster {
	t.Helper()
	c, err := embedded.StartCluster(n, opts)
	if err != nil {
		t.Fatalf("StartCluster(%d): %v", n, err)
	}
	t.Cleanup(c.Shutdown)
	return c
}

// connect connects to every server of c, reconnecting without limit.
func connect(t *testing.T, c *embedded.Cluster) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(strings.Join(c.ClientURLs(), ","), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("nats.Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	return js
}

// eventually polls cond until it holds, failing the test after limit.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not true within %v: %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// publishN publishes n messages on subject, retrying each while the
// cluster elects a leader.
func publishN(t *testing.T, js jetstream.JetStream, subject string, n int) {
	t.Helper()
	for i := range n {
		eventually(t, 20*time.Second, "publish acknowledged", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, err := js.Publish(ctx, subject, []byte("x"), jetstream.WithMsgID(fmt.Sprintf("%s-%d", subject, i)))
			return err == nil
		})
	}
}

// A cluster of one is a JetStream cluster all the same: it takes an R1
// stream and stores messages.
func TestClusterOfOne(t *testing.T) {
	c := startCluster(t, 1, embedded.ClusterOptions{})
	if got := c.Size(); got != 1 {
		t.Errorf("Size() = %d; want 1", got)
	}
	js := connect(t, c)
	s := createStream(t, js, jetstream.StreamConfig{Name: "ONE", Subjects: []string{"one"}})
	publishN(t, js, "one", 3)
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	if info.State.Msgs != 3 || info.Cluster == nil || info.Cluster.Leader != c.Name(0) {
		t.Errorf("stream: %d messages, cluster %+v; want 3 messages led by %s", info.State.Msgs, info.Cluster, c.Name(0))
	}
	if i, ok := c.StreamLeader("ONE"); !ok || i != 0 {
		t.Errorf("StreamLeader = %d, %v; want 0, true", i, ok)
	}
}

// Three servers form a cluster with an R3 stream; with its leader killed,
// the other two elect a new one and keep every message; restarted on its
// store, the killed server catches up.
func TestClusterOfThreeSurvivesKilledLeader(t *testing.T) {
	c := startCluster(t, 3, embedded.ClusterOptions{StoreDir: t.TempDir()})
	js := connect(t, c)
	ctx := context.Background()
	s := createStream(t, js, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3"}, Replicas: 3})
	publishN(t, js, "r3", 50)
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	first, ok := c.StreamLeader("R3")
	if byName, named := c.Index(info.Cluster.Leader); !ok || !named || byName != first {
		t.Fatalf("StreamLeader = %d, %v; StreamInfo names %q = index %d, %v; want the same server", first, ok, info.Cluster.Leader, byName, named)
	}
	if len(info.Cluster.Replicas) != 2 {
		t.Errorf("stream has %d other replicas; want 2", len(info.Cluster.Replicas))
	}

	killed := time.Now()
	if err := c.Kill(first); err != nil {
		t.Fatalf("Kill(%d): %v", first, err)
	}
	if c.Running(first) {
		t.Errorf("Running(%d) = true after Kill", first)
	}
	if err := c.Kill(first); err == nil || !strings.Contains(err.Error(), "is not running") {
		t.Errorf("Kill(%d) again = %v; want an error: not running", first, err)
	}
	eventually(t, 20*time.Second, "a new stream leader", func() bool {
		i, ok := c.StreamLeader("R3")
		return ok && i != first
	})
	// A handover (a graceful shutdown's step-down) takes milliseconds; a
	// crash leaves the followers to notice the silence and hold an election.
	if gap := time.Since(killed); gap < time.Second {
		t.Errorf("new leader %v after Kill; want the election after a crash, not a handover", gap)
	} else {
		t.Logf("new stream leader %v after Kill", gap.Round(time.Millisecond))
	}
	publishN(t, js, "r3", 10) // the IDs of the first 10 again: duplicates

	if err := c.Restart(first); err != nil {
		t.Fatalf("Restart(%d): %v", first, err)
	}
	if err := c.Restart(first); err == nil || !strings.Contains(err.Error(), "is running") {
		t.Errorf("Restart(%d) again = %v; want an error: running", first, err)
	}
	eventually(t, 20*time.Second, "every replica current with 50 messages", func() bool {
		info, err := s.Info(ctx)
		if err != nil || info.State.Msgs != 50 || info.Cluster == nil || info.Cluster.Leader == "" {
			return false
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current || r.Offline {
				return false
			}
		}
		return len(info.Cluster.Replicas) == 2
	})
	// A graceful stop hands the leadership over; the stream goes on.
	leader, _ := c.StreamLeader("R3")
	stopped := time.Now()
	if err := c.Stop(leader); err != nil {
		t.Fatalf("Stop(%d): %v", leader, err)
	}
	eventually(t, 20*time.Second, "a new stream leader after Stop", func() bool {
		i, ok := c.StreamLeader("R3")
		return ok && i != leader
	})
	t.Logf("new stream leader %v after Stop", time.Since(stopped).Round(time.Millisecond))
	if err := c.Restart(leader); err != nil {
		t.Fatalf("Restart(%d) after Stop: %v", leader, err)
	}

	// It found the stream in its own store, where it kept it.
	if _, err := os.Stat(filepath.Join(c.StoreDir(first), "jetstream", "$G", "streams", "R3")); err != nil {
		t.Errorf("restarted server's store: %v", err)
	}
}

func TestClusterIndexErrors(t *testing.T) {
	c := startCluster(t, 1, embedded.ClusterOptions{})
	for _, i := range []int{-1, 1} {
		if err := c.Kill(i); err == nil || !strings.Contains(err.Error(), "no server") {
			t.Errorf("Kill(%d) = %v; want an error naming the index", i, err)
		}
		if err := c.Restart(i); err == nil || !strings.Contains(err.Error(), "no server") {
			t.Errorf("Restart(%d) = %v; want an error naming the index", i, err)
		}
	}
	if _, ok := c.Index("nobody"); ok {
		t.Error(`Index("nobody") = true; want false`)
	}
	c.Shutdown()
	c.Shutdown() // idempotent
	if err := c.Restart(0); err == nil || !strings.Contains(err.Error(), "shut down") {
		t.Errorf("Restart after Shutdown = %v; want an error: shut down", err)
	}
}
