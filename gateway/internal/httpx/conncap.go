package httpx

import (
	"container/list"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
)

// ConnCap is a listener that holds at most max connections open. Unlike
// netutil.LimitListener, which blocks new accepts until a slot frees, a new connection
// at the cap closes the oldest idle one (kept alive with no request in flight, or
// open with no request sent yet): idle connections would otherwise hold every slot
// until their idle timeout, and a flood of them would lock out everyone else. Only
// when every slot has a request in flight does Accept wait for one to finish.
//
// Its ConnState must be the http.Server's ConnState hook: that is how it learns which
// connections are idle; Listener wraps the listener the server accepts from.
type ConnCap struct {
	max int

	mu     sync.Mutex
	conns  map[net.Conn]*list.Element // every open connection; nil while busy
	idle   *list.List                 // idle connections, oldest first
	wake   chan struct{}              // closed (and replaced) when a slot may have freed
	closed bool
}

// NewConnCap caps a listener at max open connections.
func NewConnCap(max int) *ConnCap {
	return &ConnCap{max: max, conns: map[net.Conn]*list.Element{}, idle: list.New(), wake: make(chan struct{})}
}

// Listener is ln with its accepts going through the cap.
func (c *ConnCap) Listener(ln net.Listener) net.Listener { return capListener{ln, c} }

type capListener struct {
	net.Listener
	c *ConnCap
}

func (l capListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.c.admit(conn)
}

func (l capListener) Close() error {
	l.c.close()
	return l.Listener.Close()
}

// admit takes conn in, closing the oldest idle connection at the cap, or waiting for
// a slot while every one is busy.
func (c *ConnCap) admit(conn net.Conn) (net.Conn, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			conn.Close()
			return nil, net.ErrClosed
		}
		if len(c.conns) < c.max {
			// New counts as idle: a client that connects and sends nothing holds no
			// more claim to its slot than one that has finished its request.
			c.conns[conn] = c.idle.PushBack(conn)
			c.mu.Unlock()
			return conn, nil
		}
		if oldest := c.idle.Front(); oldest != nil {
			victim := c.idle.Remove(oldest).(net.Conn)
			delete(c.conns, victim)
			c.mu.Unlock()
			victim.Close()
			continue
		}
		wake := c.wake
		c.mu.Unlock()
		<-wake
	}
}

// ConnState tracks each connection's state (the http.Server hook).
func (c *ConnCap) ConnState(conn net.Conn, state http.ConnState) {
	if t, ok := conn.(*tls.Conn); ok {
		conn = t.NetConn() // the connection Accept returned
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.conns[conn]
	if !ok {
		return // closed at the cap, or not ours
	}
	if e != nil {
		c.idle.Remove(e)
	}
	switch state {
	case http.StateActive:
		c.conns[conn] = nil
		return
	case http.StateNew, http.StateIdle:
		c.conns[conn] = c.idle.PushBack(conn)
	case http.StateClosed, http.StateHijacked:
		delete(c.conns, conn)
	}
	c.signal()
}

// close releases an Accept waiting for a slot: the listener is closing.
func (c *ConnCap) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		c.signal()
	}
}

// Open is how many connections are open (for tests and metrics).
func (c *ConnCap) Open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.conns)
}

// idleCount is how many open connections are idle (tests).
func (c *ConnCap) idleCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.idle.Len()
}

// signal wakes a waiting Accept; the caller holds mu.
func (c *ConnCap) signal() {
	close(c.wake)
	c.wake = make(chan struct{})
}
