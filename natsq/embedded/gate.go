package embedded

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// gate is a TCP forwarder in front of one server's listener. It listens on
// a port that stays the same for the cluster's life and forwards each
// connection to the server's current address, so a server restarted on new
// internal ports is reached at the same address. Cutting a gate closes every
// connection through it at once and refuses new ones until it is opened
// again: the peers see what a crash of the server behind it looks like on
// the network, before the server itself is stopped.
type gate struct {
	ln net.Listener
	wg sync.WaitGroup // the accept loop and the copy goroutines

	mu     sync.Mutex
	target string                // guarded by mu; "" while cut
	gen    uint64                // guarded by mu; incremented by every open and cut
	conns  map[net.Conn]struct{} // guarded by mu; both ends of every forwarded connection
	closed bool                  // guarded by mu
}

// newGate listens on host at a free port. It refuses connections until
// [gate.open].
func newGate(host string) (*gate, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, err
	}
	g := &gate{ln: ln, conns: map[net.Conn]struct{}{}}
	g.wg.Add(1)
	go g.accept()
	return g, nil
}

// addr is the gate's address, host:port.
func (g *gate) addr() string { return g.ln.Addr().String() }

// open forwards new connections to target, host:port.
func (g *gate) open(target string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.target = target
	g.gen++
}

// cut closes every connection through the gate and refuses new ones until
// the next open.
func (g *gate) cut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.target = ""
	g.gen++
	for c := range g.conns {
		_ = c.Close()
	}
	clear(g.conns)
}

// close cuts the gate, stops listening and waits for its goroutines.
func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.cut()
	_ = g.ln.Close()
	g.wg.Wait()
}

func (g *gate) accept() {
	defer g.wg.Done()
	for {
		c, err := g.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// A failed accept (out of descriptors, say): try again soon,
			// without spinning.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		g.mu.Lock()
		target, gen := g.target, g.gen
		g.mu.Unlock()
		if target == "" {
			_ = c.Close() // cut: as if nothing listened
			continue
		}
		// Dialled outside the lock: a cut meanwhile is seen by the
		// generation check in forward.
		up, err := net.DialTimeout("tcp", target, 2*time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		g.forward(c, up, gen)
	}
}

// forward copies between down and up until either side ends, unless the
// gate was cut or re-targeted since the connection was accepted.
func (g *gate) forward(down, up net.Conn, gen uint64) {
	g.mu.Lock()
	if g.closed || g.gen != gen {
		g.mu.Unlock()
		_ = down.Close()
		_ = up.Close()
		return
	}
	g.conns[down], g.conns[up] = struct{}{}, struct{}{}
	g.wg.Add(2)
	g.mu.Unlock()
	pipe := func(dst, src net.Conn) {
		defer g.wg.Done()
		_, _ = io.Copy(dst, src)
		// One direction ended: end both, as a dead peer would.
		_ = dst.Close()
		_ = src.Close()
		g.mu.Lock()
		delete(g.conns, dst)
		delete(g.conns, src)
		g.mu.Unlock()
	}
	go pipe(up, down)
	go pipe(down, up)
}
