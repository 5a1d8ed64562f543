// Command goclient is an interoperability client for ech3 that behaves like
// the real tunnel clients: Go programs built on gorilla/websocket.
//
// It dials with the token as the only subprotocol and gorilla's default 4 KiB
// write buffer (so every message over 4 KiB leaves as a first frame plus
// continuation frames), sends text "CONNECT:host:port|<first>", waits for
// "CONNECTED", relays random binary data to a TCP target it runs itself on
// 127.0.0.1:0, checks the echo byte for byte (sha256), pings every 200 ms
// during the transfer, and ends the way real clients do: text "CLOSE", then
// the TCP connection is dropped without a close frame.
//
// Modes (-mode):
//
//	echo   one binary message of -bytes bytes in a single WriteMessage
//	       (fragmented by gorilla); real-client ending (CLOSE, drop TCP).
//	multi  -bytes bytes as many binary messages of assorted sizes (0 bytes,
//	       frame-length boundaries 125/126/127/65535/65536, the 4 KiB write
//	       buffer boundary, up to 1 MiB), paced over several ping intervals;
//	       then text CLOSE, and the client waits for ech3's close frame 1000
//	       (documented answer to CLOSE) before dropping TCP without one.
//	close  the target echoes -bytes bytes and then closes: the client must
//	       get all the bytes, then text "CLOSE", then a close frame 1000.
//	sink   -bytes bytes in assorted messages to a target that only reads;
//	       right after the last message the client sends text CLOSE and
//	       drops TCP, without waiting for anything: ech3 must still write
//	       every byte received before CLOSE to the target, then close it
//	       (the target checks length and sha256 at EOF).
//	auth   a wrong token must be refused with 401 and no upgrade.
//
// -clients N runs N tunnels of the mode concurrently (each its own
// WebSocket and target connection). After the tunnels, every target
// connection must have been closed by ech3 (no leaked target sockets).
//
// Diagnostic flags for sink mode: -quiesce=false closes without waiting for
// the last pongs, and -drop fin|rst changes how TCP is dropped. A client that
// close(2)s with unread bytes in its receive buffer (a late pong) makes its
// kernel send an RST at once and discard whatever it has not sent yet, so
// the tail of the stream never reaches ech3: with -quiesce=false such runs
// lose data on the client's side, which is not an ech3 fault. That is why
// sink mode waits for every pong before CLOSE by default.
//
// Exit status 0 on success, 1 with a message on stderr otherwise.
package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

var (
	flagURL     = flag.String("url", "", "ech3 WebSocket URL, e.g. ws://127.0.0.1:8080/")
	flagToken   = flag.String("token", "", "token sent as the only Sec-WebSocket-Protocol")
	flagMode    = flag.String("mode", "echo", "echo | multi | close | auth")
	flagBytes   = flag.Int("bytes", 1<<20, "payload bytes per tunnel (for close: bytes the target echoes before closing, first data included)")
	flagClients = flag.Int("clients", 1, "concurrent tunnels")
	flagTimeout = flag.Duration("timeout", 20*time.Second, "deadline for one tunnel")
	flagVerbose = flag.Bool("v", false, "verbose")
	flagQuiesce = flag.Bool("quiesce", true, "sink mode: wait for every pong before CLOSE (false: drop with pongs maybe unread, may RST)")
	flagDrop    = flag.String("drop", "close", "sink mode, how TCP is dropped after CLOSE: close (as real clients: close(2)), fin (shutdown(SHUT_WR) first, then close after 2 s), rst (SO_LINGER 0)")
)

const pingEvery = 200 * time.Millisecond

// ---------------------------------------------------------------------------
// TCP targets inside this process.

type target struct {
	ln       net.Listener
	open     int64 // connections accepted and not yet closed by the peer
	accepted int64
	// closeAfter > 0: echo exactly this many bytes, then close.
	// closeAfter < 0: sink, read to EOF and record length and sha256.
	closeAfter int
	mu         sync.Mutex
	errs       []string
	sinks      map[string]int // "len sha256" -> count
}

func startTarget(closeAfter int) (*target, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	t := &target{ln: ln, closeAfter: closeAfter, sinks: map[string]int{}}
	go t.accept()
	return t, nil
}

func (t *target) addr() string { return t.ln.Addr().String() }

func (t *target) fail(format string, a ...interface{}) {
	t.mu.Lock()
	t.errs = append(t.errs, fmt.Sprintf(format, a...))
	t.mu.Unlock()
}

func (t *target) accept() {
	for {
		c, err := t.ln.Accept()
		if err != nil {
			return
		}
		atomic.AddInt64(&t.accepted, 1)
		atomic.AddInt64(&t.open, 1)
		go t.serve(c.(*net.TCPConn))
	}
}

func (t *target) serve(c *net.TCPConn) {
	defer atomic.AddInt64(&t.open, -1)
	defer c.Close()
	if t.closeAfter < 0 {
		h := sha256.New()
		n, err := io.Copy(h, c)
		if err != nil {
			t.fail("sink target: after %d bytes: %v", n, err)
		}
		t.mu.Lock()
		t.sinks[fmt.Sprintf("%d %x", n, h.Sum(nil))]++
		t.mu.Unlock()
		return
	}
	if t.closeAfter == 0 {
		// Echo until ech3 closes its side (EOF), then close ours.
		if _, err := io.Copy(c, c); err != nil {
			t.fail("echo target: %v", err)
		}
		return
	}
	// Closing target: echo exactly closeAfter bytes, then close first.
	buf := make([]byte, 32*1024)
	left := t.closeAfter
	for left > 0 {
		n := len(buf)
		if n > left {
			n = left
		}
		n, err := c.Read(buf[:n])
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				t.fail("closing target: write: %v", werr)
				return
			}
			left -= n
		}
		if err != nil {
			t.fail("closing target: read after %d of %d bytes: %v", t.closeAfter-left, t.closeAfter, err)
			return
		}
	}
	// FIN after the echoed bytes; the deferred Close releases the socket.
	c.CloseWrite()
	// Wait briefly for ech3 to close its side so the close is orderly.
	c.SetReadDeadline(time.Now().Add(4 * time.Second))
	n, err := io.Copy(io.Discard, c)
	if n > 0 {
		t.fail("closing target: %d unexpected bytes after the echo", n)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.fail("closing target: ech3 kept its side of the target connection open 4 s after the target closed (no FIN)")
	}
}

// waitClosed waits until ech3 has closed every target connection.
func (t *target) waitClosed(d time.Duration) error {
	deadline := time.Now().Add(d)
	open := atomic.LoadInt64(&t.open)
	for ; open != 0 && time.Now().Before(deadline); open = atomic.LoadInt64(&t.open) {
		time.Sleep(10 * time.Millisecond)
	}
	if open == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d target connections still open %v after the tunnels ended (ech3 did not close them)",
		open, atomic.LoadInt64(&t.accepted), d)
}

func (t *target) errors() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.errs...)
}

// ---------------------------------------------------------------------------
// One tunnel.

type tunnel struct {
	id   int
	c    *websocket.Conn
	logf func(string, ...interface{})

	pingsSent   int64
	pongsOK     int64
	pongsBad    int64
	serverPings int64
	sentPings   sync.Map // payload -> struct{}
	firstPong   chan struct{}
	pongOnce    sync.Once
}

func dial(id int) (*tunnel, error) {
	d := websocket.Dialer{
		Subprotocols:     []string{*flagToken},
		HandshakeTimeout: 5 * time.Second,
		// WriteBufferSize left 0: gorilla's default 4096, as in the real
		// clients, so large messages are sent as continuation frames.
	}
	c, resp, err := d.Dial(*flagURL, nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial: %v (HTTP %d)", err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial: %v", err)
	}
	if got := c.Subprotocol(); got != *flagToken {
		c.Close()
		return nil, fmt.Errorf("101 Sec-WebSocket-Protocol = %q, want the token", got)
	}
	t := &tunnel{id: id, c: c, firstPong: make(chan struct{})}
	t.logf = func(f string, a ...interface{}) {
		if *flagVerbose {
			fmt.Fprintf(os.Stderr, "[%d] %s\n", id, fmt.Sprintf(f, a...))
		}
	}
	c.SetPingHandler(func(data string) error {
		atomic.AddInt64(&t.serverPings, 1)
		err := c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		if err == websocket.ErrCloseSent {
			return nil
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		return err
	})
	c.SetPongHandler(func(data string) error {
		if _, ok := t.sentPings.Load(data); ok {
			atomic.AddInt64(&t.pongsOK, 1)
			t.pongOnce.Do(func() { close(t.firstPong) })
		} else {
			atomic.AddInt64(&t.pongsBad, 1)
		}
		return nil
	})
	return t, nil
}

// pinger sends a ping at once, another as soon as that one is answered (the
// data starts then too, so this ping goes out between the fragments of the
// first message), and then one every 200 ms until stop is closed.
func (t *tunnel) pinger(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	var tk *time.Ticker
	defer func() {
		if tk != nil {
			tk.Stop()
		}
	}()
	for seq := 0; ; seq++ {
		p := fmt.Sprintf("ping-%d-%d", t.id, seq)
		t.sentPings.Store(p, struct{}{})
		if err := t.c.WriteControl(websocket.PingMessage, []byte(p), time.Now().Add(time.Second)); err != nil {
			return
		}
		atomic.AddInt64(&t.pingsSent, 1)
		if seq == 0 {
			select {
			case <-stop:
				return
			case <-t.firstPong:
			}
			tk = time.NewTicker(pingEvery)
			continue
		}
		select {
		case <-stop:
			return
		case <-tk.C:
		}
	}
}

// connect sends CONNECT:<target>|<first> and waits for CONNECTED.
func (t *tunnel) connect(target string, first []byte) error {
	msg := append([]byte("CONNECT:"+target+"|"), first...)
	if err := t.c.WriteMessage(websocket.TextMessage, msg); err != nil {
		return fmt.Errorf("write CONNECT: %v", err)
	}
	typ, p, err := t.c.ReadMessage()
	if err != nil {
		return fmt.Errorf("waiting for CONNECTED: %v", err)
	}
	if typ != websocket.TextMessage || string(p) != "CONNECTED" {
		return fmt.Errorf("after CONNECT got %s %q, want text \"CONNECTED\"", msgType(typ), trunc(p))
	}
	return nil
}

// result of the reader goroutine.
type readResult struct {
	got       int
	sum       []byte
	afterData []string // what came after the expected bytes, in order
	err       error
}

// reader reads binary messages until want bytes have arrived, hashing them.
// If tail is set it keeps reading after that and records the following
// messages (text, close frame) until the connection ends.
func (t *tunnel) reader(want int, tail bool, out chan<- readResult) {
	h := sha256.New()
	got := 0
	var after []string
	finish := func(err error) {
		out <- readResult{got: got, sum: h.Sum(nil), afterData: after, err: err}
	}
	for got < want || tail {
		typ, p, err := t.c.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				after = append(after, fmt.Sprintf("close %d %q", ce.Code, ce.Text))
				if tail && got >= want {
					finish(nil)
					return
				}
			}
			finish(fmt.Errorf("read after %d of %d echoed bytes: %v", got, want, err))
			return
		}
		switch typ {
		case websocket.BinaryMessage:
			if got+len(p) > want {
				finish(fmt.Errorf("echo overflow: %d bytes after %d, want %d in total", len(p), got, want))
				return
			}
			h.Write(p)
			got += len(p)
		default:
			if got < want {
				finish(fmt.Errorf("%s %q after %d of %d echoed bytes", msgType(typ), trunc(p), got, want))
				return
			}
			after = append(after, fmt.Sprintf("%s %q", msgType(typ), trunc(p)))
		}
	}
	finish(nil)
}

// ---------------------------------------------------------------------------
// Modes.

func randBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

// firstData is raw (not base64: it has spaces, '|' and CR LF), so ech3 must
// relay it untouched; a '|' inside first data is part of the data.
func firstData(id int) []byte {
	return []byte(fmt.Sprintf("first|data %04d \r\n", id))
}

var multiSizes = []int{1, 0, 125, 126, 127, 4095, 4096, 4097, 65535, 65536, 65537, 1000, 300000, 1 << 20, 7}

func plan(mode string, total int) [][]byte {
	if mode == "echo" {
		return [][]byte{randBytes(total)}
	}
	var msgs [][]byte
	left := total
	for i := 0; left > 0; i++ {
		n := multiSizes[i%len(multiSizes)]
		if n > left {
			n = left
		}
		msgs = append(msgs, randBytes(n))
		left -= n
	}
	return msgs
}

// expected sink results, "len sha256" -> count
var (
	sinkMu   sync.Mutex
	sinkWant = map[string]int{}
)

func runTunnel(id int, mode string, tgt *target) error {
	t, err := dial(id)
	if err != nil {
		return err
	}
	defer t.c.Close() // drops TCP; gorilla's Close sends no close frame
	t.c.SetReadDeadline(time.Now().Add(*flagTimeout))

	first := firstData(id)
	var msgs [][]byte
	if mode == "close" {
		n := *flagBytes - len(first)
		if n < 0 {
			n = 0
		}
		msgs = plan("multi", n)
	} else {
		msgs = plan(mode, *flagBytes)
	}
	exp := sha256.New()
	exp.Write(first)
	want := len(first)
	for _, m := range msgs {
		exp.Write(m)
		want += len(m)
	}

	if err := t.connect(tgt.addr(), first); err != nil {
		return err
	}
	t.logf("CONNECTED, sending %d bytes in %d messages", want-len(first), len(msgs))

	stopPing, pingDone := make(chan struct{}), make(chan struct{})
	go t.pinger(stopPing, pingDone)
	stopPinger := func() {
		select {
		case <-stopPing:
		default:
			close(stopPing)
		}
		<-pingDone
	}
	defer stopPinger()

	if mode == "sink" {
		return t.sinkRun(msgs, want, exp.Sum(nil), stopPinger)
	}

	rd := make(chan readResult, 1)
	go t.reader(want, mode == "close", rd)

	wrErr := make(chan error, 1)
	go func() {
		select {
		case <-t.firstPong:
		case <-time.After(3 * time.Second):
			wrErr <- fmt.Errorf("no pong within 3 s to the ping sent after CONNECTED")
			return
		}
		for i, m := range msgs {
			if err := t.c.WriteMessage(websocket.BinaryMessage, m); err != nil {
				wrErr <- fmt.Errorf("write message %d (%d bytes): %v", i, len(m), err)
				return
			}
			if mode == "multi" {
				// Spread the messages over a few ping intervals.
				time.Sleep(40 * time.Millisecond)
			}
		}
		wrErr <- nil
	}()

	if err := <-wrErr; err != nil {
		return err
	}
	var res readResult
	select {
	case res = <-rd:
	case <-time.After(*flagTimeout):
		return fmt.Errorf("timed out reading the echo")
	}
	if res.err != nil {
		return res.err
	}
	if res.got != want || !bytes.Equal(res.sum, exp.Sum(nil)) {
		return fmt.Errorf("echo differs: got %d bytes sha256 %s, sent %d bytes sha256 %s",
			res.got, hex.EncodeToString(res.sum)[:16], want, hex.EncodeToString(exp.Sum(nil))[:16])
	}
	t.logf("echo ok: %d bytes", res.got)

	switch mode {
	case "close":
		stopPinger()
		// Target closed first: text CLOSE, then close frame 1000, nothing else.
		wantAfter := []string{`text "CLOSE"`, `close 1000 ""`}
		if strings.Join(res.afterData, ", ") != strings.Join(wantAfter, ", ") {
			return fmt.Errorf("after the target closed got [%s], want [%s]",
				strings.Join(res.afterData, ", "), strings.Join(wantAfter, ", "))
		}
		// gorilla's default close handler has answered with a close frame.
	default:
		if err := t.checkPongs(); err != nil {
			return err
		}
		stopPinger()
		if err := t.c.WriteMessage(websocket.TextMessage, []byte("CLOSE")); err != nil {
			return fmt.Errorf("write CLOSE: %v", err)
		}
		if mode == "multi" {
			// Documented: ech3 answers CLOSE with a close frame 1000. Read
			// it, then drop TCP without answering, as real clients do.
			t.c.SetReadDeadline(time.Now().Add(5 * time.Second))
			typ, p, err := t.c.ReadMessage()
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != 1000 {
				if err != nil {
					return fmt.Errorf("after CLOSE: want close frame 1000, got %v", err)
				}
				return fmt.Errorf("after CLOSE: want close frame 1000, got %s %q", msgType(typ), trunc(p))
			}
		}
		// echo: drop TCP right after CLOSE (deferred Close), no close frame.
	}
	if n := atomic.LoadInt64(&t.pongsBad); n > 0 {
		return fmt.Errorf("%d pongs with a payload we never sent", n)
	}
	t.logf("done: %d pings sent, %d pongs, %d server pings", atomic.LoadInt64(&t.pingsSent),
		atomic.LoadInt64(&t.pongsOK), atomic.LoadInt64(&t.serverPings))
	return nil
}

// sinkRun sends the messages, then CLOSE, and drops TCP at once.
func (t *tunnel) sinkRun(msgs [][]byte, want int, sum []byte, stopPinger func()) error {
	// Read in the background so the pongs (and the first one, which starts
	// the data) are seen; nothing else may arrive before our CLOSE.
	unexpected := make(chan string, 1)
	go func() {
		for {
			typ, p, err := t.c.ReadMessage()
			if err != nil {
				return
			}
			select {
			case unexpected <- fmt.Sprintf("%s %q", msgType(typ), trunc(p)):
			default:
			}
		}
	}()
	select {
	case <-t.firstPong:
	case <-time.After(3 * time.Second):
		return fmt.Errorf("no pong within 3 s to the ping sent after CONNECTED")
	}
	for i, m := range msgs {
		if err := t.c.WriteMessage(websocket.BinaryMessage, m); err != nil {
			return fmt.Errorf("write message %d (%d bytes): %v", i, len(m), err)
		}
	}
	stopPinger()
	// Wait until every ping has its pong, so that nothing unread sits in
	// our receive buffer when we close: close(2) with unread data sends an
	// RST at once and throws away what our kernel has not sent yet, which
	// would lose data on our side, not ech3's. With an empty receive
	// buffer the kernel delivers everything queued, CLOSE last, then FIN.
	for deadline := time.Now().Add(3 * time.Second); *flagQuiesce && atomic.LoadInt64(&t.pongsOK) < atomic.LoadInt64(&t.pingsSent); {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d pings unanswered after 3 s", atomic.LoadInt64(&t.pingsSent)-atomic.LoadInt64(&t.pongsOK), atomic.LoadInt64(&t.pingsSent))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := t.c.WriteMessage(websocket.TextMessage, []byte("CLOSE")); err != nil {
		return fmt.Errorf("write CLOSE: %v", err)
	}
	sinkMu.Lock()
	sinkWant[fmt.Sprintf("%d %x", want, sum)]++
	sinkMu.Unlock()
	select {
	case u := <-unexpected:
		return fmt.Errorf("unexpected message from a target that never writes: %s", u)
	default:
	}
	t.logf("sent %d bytes and CLOSE; dropping TCP (%s)", want, *flagDrop)
	switch tc := t.c.UnderlyingConn().(*net.TCPConn); *flagDrop {
	case "fin":
		tc.CloseWrite()
		time.Sleep(2 * time.Second)
	case "rst":
		tc.SetLinger(0)
	}
	return nil // the deferred Close drops TCP now
}

// checkPongs: at least one of our pings must have been answered (the data
// waits for the first pong, so this holds unless a pong was unexpected).
func (t *tunnel) checkPongs() error {
	if atomic.LoadInt64(&t.pongsOK) == 0 {
		return fmt.Errorf("no pong for %d pings sent during the transfer", atomic.LoadInt64(&t.pingsSent))
	}
	return nil
}

func runAuth() error {
	d := websocket.Dialer{Subprotocols: []string{*flagToken + "-wrong"}, HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(*flagURL, nil)
	if err == nil {
		c.Close()
		return fmt.Errorf("wrong token: upgrade accepted")
	}
	if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		return fmt.Errorf("wrong token: want HTTP 401, got %d (%v)", code, err)
	}
	// And no token at all.
	d.Subprotocols = nil
	c, resp, err = d.Dial(*flagURL, nil)
	if err == nil {
		c.Close()
		return fmt.Errorf("no token: upgrade accepted")
	}
	if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("no token: want HTTP 401 (%v)", err)
	}
	return nil
}

func msgType(t int) string {
	switch t {
	case websocket.TextMessage:
		return "text"
	case websocket.BinaryMessage:
		return "binary"
	}
	return fmt.Sprintf("opcode %d", t)
}

func trunc(p []byte) string {
	if len(p) > 80 {
		return string(p[:80]) + "..."
	}
	return string(p)
}

func main() {
	flag.Parse()
	if *flagURL == "" {
		fmt.Fprintln(os.Stderr, "goclient: -url is required")
		os.Exit(2)
	}
	mode := *flagMode
	start := time.Now()
	if mode == "auth" {
		if err := runAuth(); err != nil {
			fmt.Fprintf(os.Stderr, "goclient FAIL mode=auth: %v\n", err)
			os.Exit(1)
		}
		fmt.Printf("goclient ok mode=auth (%v)\n", time.Since(start).Round(time.Millisecond))
		return
	}
	if mode != "echo" && mode != "multi" && mode != "close" && mode != "sink" {
		fmt.Fprintf(os.Stderr, "goclient: unknown -mode %q\n", mode)
		os.Exit(2)
	}
	closeAfter := 0
	if mode == "close" {
		closeAfter = *flagBytes
		if closeAfter < len(firstData(0)) {
			fmt.Fprintf(os.Stderr, "goclient: -bytes must be at least %d in close mode\n", len(firstData(0)))
			os.Exit(2)
		}
	}
	if mode == "sink" {
		closeAfter = -1
	}
	tgt, err := startTarget(closeAfter)
	if err != nil {
		fmt.Fprintf(os.Stderr, "goclient: target: %v\n", err)
		os.Exit(1)
	}

	var wg sync.WaitGroup
	errs := make([]error, *flagClients)
	for i := 0; i < *flagClients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = runTunnel(i, mode, tgt)
		}(i)
	}
	wg.Wait()

	failed := 0
	for i, e := range errs {
		if e != nil {
			failed++
			fmt.Fprintf(os.Stderr, "goclient FAIL mode=%s tunnel %d/%d: %v\n", mode, i, *flagClients, e)
		}
	}
	if failed == 0 {
		if err := tgt.waitClosed(5 * time.Second); err != nil {
			failed++
			fmt.Fprintf(os.Stderr, "goclient FAIL mode=%s: %v\n", mode, err)
		}
	}
	if mode == "sink" && failed == 0 {
		tgt.mu.Lock()
		for k, n := range sinkWant {
			if tgt.sinks[k] != n {
				failed++
				fmt.Fprintf(os.Stderr, "goclient FAIL mode=sink: sent %d stream(s) of \"len sha256\" %s before CLOSE, target received %d such\n", n, k[:24], tgt.sinks[k])
			}
		}
		for k, n := range tgt.sinks {
			if sinkWant[k] == 0 {
				failed++
				fmt.Fprintf(os.Stderr, "goclient FAIL mode=sink: target received %d stream(s) of \"len sha256\" %s that no client sent in full\n", n, k[:24])
			}
		}
		tgt.mu.Unlock()
	}
	for _, e := range tgt.errors() {
		failed++
		fmt.Fprintf(os.Stderr, "goclient FAIL mode=%s target: %s\n", mode, e)
	}
	if got := atomic.LoadInt64(&tgt.accepted); failed == 0 && got != int64(*flagClients) {
		failed++
		fmt.Fprintf(os.Stderr, "goclient FAIL mode=%s: target accepted %d connections, want %d\n", mode, got, *flagClients)
	}
	if failed > 0 {
		os.Exit(1)
	}
	fmt.Printf("goclient ok mode=%s clients=%d bytes=%d (%v)\n", mode, *flagClients, *flagBytes,
		time.Since(start).Round(time.Millisecond))
}
