package embedded

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ClusterOptions configures [StartCluster]. The zero value starts servers
// on loopback with temporary stores.
type ClusterOptions struct {
	// Name is the cluster's name; the servers are Name-1 ... Name-n.
	// Default "natsq".
	Name string
	// Host is the loopback address to listen on. Default "127.0.0.1".
	Host string
	// StoreDir is the parent of the servers' store directories, one
	// sub-directory per server, named after it. Default "": a temporary
	// directory created by StartCluster and removed by Shutdown. A given
	// directory is kept.
	StoreDir string
	// ReadyTimeout bounds how long StartCluster and Restart wait for
	// servers to accept connections and for the JetStream meta group to
	// have a leader and every running server caught up. Default 30s.
	ReadyTimeout time.Duration
}

// Cluster is a JetStream cluster of in-process servers, full-mesh routed on
// loopback, each with its own store directory. Create one with
// [StartCluster]; its methods are safe for concurrent use.
//
// Every server is reached through addresses that stay the same for the
// cluster's life, its client URL and one route address per peer, which
// forward to the server's own listeners (on ports chosen free at each
// start). [Cluster.Kill] closes those addresses' connections before
// stopping the server, so its peers and clients lose it the way they lose
// a crashed process: without a goodbye or a handover of the streams it
// leads. [Cluster.Restart] starts it again on its store, behind the same
// addresses. The forwarding copies every byte once more, which adds some
// latency to in-process figures; a real cluster has no such hop.
type Cluster struct {
	opts    ClusterOptions
	tempDir string       // removed by Shutdown; "" when StoreDir was given
	sink    net.Listener // advertised as every server's route address: see memberOptions
	sinkWG  sync.WaitGroup

	mu      sync.Mutex
	members []*member // guarded by mu (each member's ns too)
	down    bool      // guarded by mu; Shutdown was called
}

// StartCluster starts n JetStream servers that form one cluster, and
// returns once all accept connections and the JetStream meta group has a
// leader that every server follows. n must be odd: a JetStream cluster
// keeps working while a majority of its servers run, so an even number of
// servers survives no more failures than one server less. n = 1 is a
// cluster of one, which survives none; it runs JetStream standalone, since
// JetStream refuses to run clustered without routes.
func StartCluster(n int, opts ClusterOptions) (*Cluster, error) {
	switch {
	case n < 1:
		return nil, fmt.Errorf("embedded: cluster size must be at least 1, got %d", n)
	case n%2 == 0:
		return nil, fmt.Errorf("embedded: cluster size must be odd, got %d: %d servers survive no more failures than %d", n, n, n-1)
	}
	if opts.Name == "" {
		opts.Name = "natsq"
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 30 * time.Second
	}
	c := &Cluster{opts: opts}
	if err := c.build(n); err != nil {
		c.Shutdown()
		return nil, err
	}
	c.mu.Lock()
	var errs []error
	for i := range c.members {
		errs = append(errs, c.startLocked(i))
	}
	c.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		c.Shutdown()
		return nil, err
	}
	if err := c.waitReady(-1); err != nil {
		c.Shutdown()
		return nil, err
	}
	return c, nil
}

// Size returns the number of servers, running or not.
func (c *Cluster) Size() int { return len(c.members) }

// ClientURLs returns every server's client URL, in server order, for
// nats.Connect (joined with commas) or nats.Connect's Servers option. Each
// URL stays valid across Kill and Restart.
func (c *Cluster) ClientURLs() []string {
	urls := make([]string, len(c.members))
	for i, m := range c.members {
		urls[i] = "nats://" + m.client.addr()
	}
	return urls
}

// ClientURL returns server i's client URL. It panics if i is out of range,
// like an index into [Cluster.ClientURLs].
func (c *Cluster) ClientURL(i int) string { return "nats://" + c.members[i].client.addr() }

// Name returns server i's name, as JetStream reports it in
// StreamInfo.Cluster.Leader. It panics if i is out of range.
func (c *Cluster) Name(i int) string { return c.members[i].name }

// Index returns the index of the server called name, and false if there is
// none: the way from JetStream's StreamInfo.Cluster.Leader to [Cluster.Kill].
func (c *Cluster) Index(name string) (int, bool) {
	for i, m := range c.members {
		if m.name == name {
			return i, true
		}
	}
	return -1, false
}

// StoreDir returns server i's JetStream store directory. It panics if i is
// out of range.
func (c *Cluster) StoreDir(i int) string { return c.members[i].storeDir }

// Running reports whether server i is running. It is false for an i out of
// range.
func (c *Cluster) Running(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return i >= 0 && i < len(c.members) && c.members[i].ns != nil
}

// StreamLeader returns the index of the running server that leads stream in
// the default account, and false while none does (during an election, or
// when the stream does not exist).
func (c *Cluster) StreamLeader(stream string) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.members) == 1 {
		if ns := c.members[0].ns; ns != nil && hasStream(ns, stream) {
			return 0, true
		}
		return -1, false
	}
	for i, m := range c.members {
		if m.ns != nil && m.ns.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return i, true
		}
	}
	return -1, false
}

// Kill stops server i abruptly: first every connection to and from it, its
// clients' and its routes, is closed at once, then the server, cut off, is
// shut down, so no leadership is handed over and no last word reaches its
// peers or clients. What it had written to its store stays there, as a
// crashed process's writes stay in the operating system's files. It returns
// an error if i is out of range or the server is not running.
func (c *Cluster) Kill(i int) error {
	c.mu.Lock()
	if err := c.checkLocked(i, true); err != nil {
		c.mu.Unlock()
		return err
	}
	ns := c.members[i].ns
	c.members[i].ns = nil
	c.wireLocked()
	c.mu.Unlock()
	ns.Shutdown()
	ns.WaitForShutdown()
	return nil
}

// Stop shuts server i down gracefully, as a rolling restart does: it hands
// the leadership of its streams and consumers to other servers first, then
// closes its connections. It returns an error if i is out of range or the
// server is not running.
func (c *Cluster) Stop(i int) error {
	c.mu.Lock()
	if err := c.checkLocked(i, true); err != nil {
		c.mu.Unlock()
		return err
	}
	ns := c.members[i].ns
	c.mu.Unlock()
	ns.Shutdown()
	ns.WaitForShutdown()
	c.mu.Lock()
	if c.members[i].ns == ns { // not already killed, or killed and restarted
		c.members[i].ns = nil
		c.wireLocked()
	}
	c.mu.Unlock()
	return nil
}

// Restart starts server i again after [Cluster.Kill] or [Cluster.Stop], on
// its store directory and behind its client URL and route addresses, and
// returns once it accepts connections and has caught up with the JetStream
// meta group (which needs a majority of the servers running). It returns an
// error if i is out of range, the server is running, or it does not become
// ready within ReadyTimeout.
func (c *Cluster) Restart(i int) error {
	c.mu.Lock()
	err := c.checkLocked(i, false)
	if err == nil {
		err = c.startLocked(i)
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return c.waitReady(i)
}

// Shutdown stops every running server, waits until they have stopped, and
// removes the stores when they were in a temporary directory. It is
// idempotent.
func (c *Cluster) Shutdown() {
	c.mu.Lock()
	if c.down {
		c.mu.Unlock()
		return
	}
	c.down = true
	var running []*server.Server
	for _, m := range c.members {
		if m.ns != nil {
			running = append(running, m.ns)
			m.ns = nil
		}
	}
	c.mu.Unlock()
	for _, ns := range running {
		ns.Shutdown()
	}
	for _, ns := range running {
		ns.WaitForShutdown()
	}
	for _, m := range c.members {
		for _, g := range append([]*gate{m.client}, m.routes...) {
			if g != nil {
				g.close()
			}
		}
	}
	if c.sink != nil {
		_ = c.sink.Close()
		c.sinkWG.Wait()
	}
	if c.tempDir != "" {
		_ = os.RemoveAll(c.tempDir)
	}
}
