package embedded

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// member is one server of the cluster.
type member struct {
	name     string
	storeDir string
	ns       *server.Server // nil while stopped
	client   *gate          // clients' entrance
	routes   []*gate        // routes[j]: this server's route to server j; nil for itself
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
