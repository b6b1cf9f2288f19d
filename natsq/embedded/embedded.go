// Package embedded runs NATS JetStream servers inside the calling process,
// for tests, development and single-machine setups: one server with
// [Start], or a cluster of several with [StartCluster], so that tests can
// lose a server of a replicated stream without Docker. It is the only
// package of natsq that imports nats-server; production code that connects
// to a real NATS cluster does not need it.
//
// Servers listen on a loopback address only and keep their stores in the
// directory given in the options, or in a fresh temporary directory that
// Shutdown removes.
package embedded

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configures [Start]. The zero value starts a server on a random
// loopback port with a temporary store.
type Options struct {
	// Host is the address to listen on. Default "127.0.0.1".
	Host string
	// Port is the client port. Default 0: a random free port. Give the port
	// of an earlier server to restart it where clients reconnect.
	Port int
	// StoreDir is where JetStream keeps streams. Default "": a temporary
	// directory created by Start and removed by Shutdown. A given directory
	// is kept, so a server started again on it finds its streams.
	StoreDir string
	// ReadyTimeout bounds how long Start waits for the server to accept
	// connections. Default 10s.
	ReadyTimeout time.Duration
}

// Server is a running embedded server. Its methods are safe for concurrent
// use.
type Server struct {
	ns      *server.Server
	tempDir string // removed by Shutdown; "" when StoreDir was given
}

// Start starts a JetStream server and returns once it accepts connections.
func Start(opts Options) (*Server, error) {
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Port == 0 {
		opts.Port = server.RANDOM_PORT
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 10 * time.Second
	}
	s := &Server{}
	if opts.StoreDir == "" {
		dir, err := os.MkdirTemp("", "natsq-embedded-*")
		if err != nil {
			return nil, fmt.Errorf("embedded: store directory: %w", err)
		}
		opts.StoreDir, s.tempDir = dir, dir
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: "natsq-embedded",
		Host:       opts.Host,
		Port:       opts.Port,
		JetStream:  true,
		StoreDir:   opts.StoreDir,
		NoSigs:     true,
		NoLog:      true,
		// No HTTP monitoring, cluster, gateway or leaf listeners.
	})
	if err != nil {
		s.removeTemp()
		return nil, fmt.Errorf("embedded: %w", err)
	}
	s.ns = ns
	ns.Start()
	if !ns.ReadyForConnections(opts.ReadyTimeout) {
		s.Shutdown()
		return nil, errors.New("embedded: server not ready for connections within " + opts.ReadyTimeout.String())
	}
	if !ns.JetStreamEnabled() {
		s.Shutdown()
		return nil, errors.New("embedded: JetStream did not start")
	}
	return s, nil
}

// ClientURL returns the URL clients connect to, such as
// "nats://127.0.0.1:40123".
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// Port returns the client port the server listens on.
func (s *Server) Port() int {
	if a, ok := s.ns.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

// StoreDir returns the JetStream store directory.
func (s *Server) StoreDir() string { return s.ns.StoreDir() }

// Shutdown stops the server, waits until it has stopped, and removes the
// store when it was a temporary directory. It is idempotent.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
	s.removeTemp()
}

func (s *Server) removeTemp() {
	if s.tempDir != "" {
		_ = os.RemoveAll(s.tempDir)
	}
}
