package embedded

import (
	"bufio"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// echoServer echoes every line back with prefix, until the test ends.
func echoServer(t *testing.T, prefix string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { _ = ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := io.WriteString(c, prefix+line); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// roundTrip sends a line through conn and returns the answer.
func roundTrip(conn net.Conn, line string) (string, error) {
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, line+"\n"); err != nil {
		return "", err
	}
	got, err := bufio.NewReader(conn).ReadString('\n')
	return got, err
}

// A gate forwards while open; a cut ends its connections and refuses new
// ones; opened again, possibly to a new target, it forwards at the same
// address.
func TestGateForwardsCutsAndReopens(t *testing.T) {
	g, err := newGate("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	g.open(echoServer(t, "a:"))
	conn, err := net.Dial("tcp", g.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got, err := roundTrip(conn, "hello"); got != "a:hello\n" || err != nil {
		t.Fatalf("through the open gate: %q, %v; want %q", got, err, "a:hello\n")
	}

	g.cut()
	if got, err := roundTrip(conn, "again"); err == nil {
		t.Errorf("after cut, old connection answered %q; want it closed", got)
	}
	refused, err := net.Dial("tcp", g.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer refused.Close()
	var ne net.Error
	if got, err := roundTrip(refused, "anyone"); err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Errorf("new connection to a cut gate: %q, %v; want it closed at once", got, err)
	}

	g.open(echoServer(t, "b:"))
	again, err := net.Dial("tcp", g.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if got, err := roundTrip(again, "back"); got != "b:back\n" || err != nil {
		t.Errorf("through the reopened gate: %q, %v; want %q", got, err, "b:back\n")
	}
}
