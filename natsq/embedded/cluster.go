package embedded

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
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

// member is one server of the cluster.
type member struct {
	name     string
	storeDir string
	ns       *server.Server // nil while stopped
	client   *gate          // clients' entrance
	routes   []*gate        // routes[j]: this server's route to server j; nil for itself
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

// build creates the store directories, the gates and the sink.
func (c *Cluster) build(n int) error {
	parent := c.opts.StoreDir
	if parent == "" {
		dir, err := os.MkdirTemp("", "natsq-cluster-*")
		if err != nil {
			return fmt.Errorf("embedded: store directory: %w", err)
		}
		parent, c.tempDir = dir, dir
	}
	sink, err := net.Listen("tcp", net.JoinHostPort(c.opts.Host, "0"))
	if err != nil {
		return fmt.Errorf("embedded: %w", err)
	}
	c.sink = sink
	c.sinkWG.Add(1)
	go func() {
		defer c.sinkWG.Done()
		for {
			conn, err := sink.Accept()
			if err != nil {
				return
			}
			_ = conn.Close()
		}
	}()
	for i := range n {
		m := &member{name: fmt.Sprintf("%s-%d", c.opts.Name, i+1), routes: make([]*gate, n)}
		m.storeDir = filepath.Join(parent, m.name)
		c.members = append(c.members, m) // before any error, so Shutdown closes its gates
		if m.client, err = newGate(c.opts.Host); err != nil {
			return fmt.Errorf("embedded: %w", err)
		}
		for j := range n {
			if j == i {
				continue
			}
			if m.routes[j], err = newGate(c.opts.Host); err != nil {
				return fmt.Errorf("embedded: %w", err)
			}
		}
	}
	return nil
}

// checkLocked returns an error unless i is a server that is running (or
// stopped, when running is false) in a cluster not shut down.
func (c *Cluster) checkLocked(i int, running bool) error {
	switch {
	case c.down:
		return errors.New("embedded: cluster is shut down")
	case i < 0 || i >= len(c.members):
		return fmt.Errorf("embedded: no server %d in a cluster of %d (0 to %d)", i, len(c.members), len(c.members)-1)
	case running && c.members[i].ns == nil:
		return fmt.Errorf("embedded: server %d (%s) is not running", i, c.members[i].name)
	case !running && c.members[i].ns != nil:
		return fmt.Errorf("embedded: server %d (%s) is running; Kill or Stop it first", i, c.members[i].name)
	}
	return nil
}

// startLocked starts server i and opens its gates.
func (c *Cluster) startLocked(i int) error {
	ns, err := c.launch(i)
	if err != nil {
		return err
	}
	c.members[i].ns = ns
	c.wireLocked()
	return nil
}

// launch starts server i and waits until it accepts connections. It reads
// only what never changes after build, so it needs no lock.
func (c *Cluster) launch(i int) (*server.Server, error) {
	m := c.members[i]
	ns, err := server.NewServer(c.memberOptions(i))
	if err != nil {
		return nil, fmt.Errorf("embedded: %s: %w", m.name, err)
	}
	ns.Start()
	if !ns.ReadyForConnections(c.opts.ReadyTimeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("embedded: %s not ready for connections within %v", m.name, c.opts.ReadyTimeout)
	}
	return ns, nil
}

// memberOptions is server i's configuration. Its own listeners take free
// ports; peers reach it through the gates. Each server solicits a route to
// every other server through its own gate to that server, and advertises
// the sink as its route address: a server that learns of a peer by gossip
// before its own route is up then fails to connect to the peer directly,
// so no route bypasses the gates that Kill cuts.
func (c *Cluster) memberOptions(i int) *server.Options {
	m := c.members[i]
	var routes []*url.URL
	for _, g := range m.routes {
		if g != nil {
			routes = append(routes, &url.URL{Scheme: "nats-route", Host: g.addr()})
		}
	}
	o := &server.Options{
		ServerName:      m.name,
		Host:            c.opts.Host,
		Port:            server.RANDOM_PORT,
		ClientAdvertise: m.client.addr(), // clients discover the other servers' gates
		JetStream:       true,
		StoreDir:        m.storeDir,
		NoSigs:          true,
		NoLog:           true,
	}
	if len(c.members) > 1 {
		// A cluster of one has no routes, and JetStream refuses to run
		// clustered without any: it runs as a standalone server.
		o.Cluster = server.ClusterOpts{
			Name:      c.opts.Name,
			Host:      c.opts.Host,
			Port:      server.RANDOM_PORT,
			Advertise: c.sink.Addr().String(),
		}
		o.Routes = routes
	}
	return o
}

// wireLocked opens every gate whose server is running (and, for a route,
// whose soliciting server is running too), and cuts the others.
func (c *Cluster) wireLocked() {
	for _, m := range c.members {
		if m.ns == nil {
			m.client.cut()
		} else {
			m.client.open(m.ns.Addr().String())
		}
		for j, g := range m.routes {
			if g == nil {
				continue
			}
			if to := c.members[j].ns; m.ns != nil && to != nil {
				if a := to.ClusterAddr(); a != nil {
					g.open(a.String())
					continue
				}
			}
			g.cut()
		}
	}
}

// waitReady polls until the JetStream meta group has a leader that sees
// every running server and every running server is caught up (server only alone
// when only >= 0), or ReadyTimeout passes.
func (c *Cluster) waitReady(only int) error {
	deadline := time.Now().Add(c.opts.ReadyTimeout)
	for {
		ok, what := c.ready(only)
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("embedded: cluster not ready within %v: %s", c.opts.ReadyTimeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ready reports whether the cluster is ready in waitReady's sense, and if
// not, what it waits for.
func (c *Cluster) ready(only int) (bool, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return false, "shut down"
	}
	if len(c.members) == 1 {
		if ns := c.members[0].ns; ns == nil || !ns.JetStreamEnabled() {
			return false, "JetStream not running"
		}
		return true, ""
	}
	running := 0
	for _, m := range c.members {
		if m.ns != nil {
			running++
		}
	}
	leader := false
	for _, m := range c.members {
		if m.ns != nil && m.ns.JetStreamIsLeader() {
			if got := len(m.ns.JetStreamClusterPeers()); got < running {
				return false, fmt.Sprintf("meta leader %s sees %d of the %d running servers", m.name, got, running)
			}
			leader = true
		}
	}
	if !leader {
		return false, "no JetStream meta leader"
	}
	for i, m := range c.members {
		if m.ns != nil && (only < 0 || only == i) && !m.ns.JetStreamIsCurrent() {
			return false, m.name + " not caught up with the meta group"
		}
	}
	return true, ""
}

// hasStream reports whether the standalone server ns has stream in the
// default account.
func hasStream(ns *server.Server, stream string) bool {
	info, err := ns.Jsz(&server.JSzOptions{Account: server.DEFAULT_GLOBAL_ACCOUNT, Streams: true})
	if err != nil {
		return false
	}
	for _, a := range info.AccountDetails {
		for _, st := range a.Streams {
			if st.Name == stream {
				return true
			}
		}
	}
	return false
}
