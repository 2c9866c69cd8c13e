package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"lotterycentral.example/lottery"
)

// The floor: the least work that moves the same agency files over loopback TCP
// into one durable file. An in-harness receiver accepts one connection per
// agency and appends what each sends to ONE file (whole lines, under a mutex);
// when a stream ends it fsyncs the file and answers one byte. The senders are
// processes, like the agencies — the harness binary itself run as
// `bench floor-send -addr A -file F` — so process start-up is paid on both
// sides: each streams its file raw in 8 KiB writes, half-closes, and waits for
// the byte. The floor is timed like the end-to-end run: from starting the
// senders to the last sender's exit.

const floorChunk = 8 << 10

// floorSend is the `floor-send` subcommand; it returns the exit code.
func floorSend(args []string) int {
	fs := flag.NewFlagSet("bench floor-send", flag.ContinueOnError)
	addr := fs.String("addr", "", "receiver address")
	file := fs.String("file", "", "file to send")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := sendFile(*addr, *file, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "floor-send:", err)
		return 1
	}
	return 0
}

func sendFile(addr, path string, timeout time.Duration) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	conn := c.(*net.TCPConn)
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	buf := make([]byte, floorChunk)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if _, werr := conn.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	if err := conn.CloseWrite(); err != nil {
		return err
	}
	var ack [1]byte
	if _, err := io.ReadFull(conn, ack[:]); err != nil {
		return fmt.Errorf("await ack: %w", err)
	}
	if ack[0] != 1 {
		return fmt.Errorf("ack byte %d, want 1", ack[0])
	}
	return nil
}

// floorReceiver appends every connection's bytes to one file.
type floorReceiver struct {
	mu      sync.Mutex // out and written
	out     *os.File
	written int64
}

func (r *floorReceiver) append(p []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, err := r.out.Write(p)
	r.written += int64(n)
	return err
}

// serve copies one stream into the file in whole lines, so streams interleave
// only at line boundaries; at EOF it fsyncs and acknowledges with one byte.
func (r *floorReceiver) serve(conn net.Conn, deadline time.Time) error {
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	carry := 0 // bytes of an unfinished line at the start of buf
	for {
		n, err := conn.Read(buf[carry:])
		carry += n
		if i := bytes.LastIndexByte(buf[:carry], '\n'); i >= 0 {
			if werr := r.append(buf[:i+1]); werr != nil {
				return werr
			}
			carry = copy(buf, buf[i+1:carry])
		} else if carry == len(buf) { // a line longer than the buffer
			if werr := r.append(buf); werr != nil {
				return werr
			}
			carry = 0
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	if carry > 0 {
		if err := r.append(buf[:carry]); err != nil {
			return err
		}
	}
	if err := r.out.Sync(); err != nil {
		return err
	}
	_, err := conn.Write([]byte{1})
	return err
}

// runFloor copies ds's agency files into one fresh file and returns the time from
// starting the senders to the last sender's exit.
func (b *bench) runFloor(parent context.Context, ds *dataset, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeoutCause(parent, timeout, fmt.Errorf("floor took longer than %s", timeout))
	defer cancel()
	deadline, _ := ctx.Deadline()
	runDir, err := os.MkdirTemp(b.work, "floor-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(runDir)
	out, err := os.OpenFile(filepath.Join(runDir, "copy.csv"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()

	n := ds.Agencies
	rcv := &floorReceiver{out: out}
	served := make(chan error, n)
	go func() {
		for range n {
			conn, err := ln.Accept()
			if err != nil {
				served <- err
				return
			}
			go func() { served <- rcv.serve(conn, deadline) }()
		}
	}()

	senders := make([]*proc, n)
	defer func() {
		for _, s := range senders {
			if s != nil {
				s.kill()
			}
		}
	}()
	t0 := time.Now()
	for k := range senders {
		s, err := startProc(fmt.Sprintf("floor-send%d", k+1), b.self, childEnv(), "floor-send",
			"-addr", ln.Addr().String(), "-file", filepath.Join(ds.dir, lottery.AgencyFileName(k+1)),
			"-timeout", timeout.String())
		if err != nil {
			return 0, err
		}
		senders[k] = s
	}
	var lastExit time.Time
	for _, s := range senders {
		if err := s.wait(ctx); err != nil {
			return 0, err
		}
		if code := s.exitCode(); code != 0 {
			return 0, fmt.Errorf("%s exited %d\n%s", s.name, code, s.tail(5))
		}
		lastExit = latest(lastExit, s.exitAt)
	}
	wall := lastExit.Sub(t0)
	for range n {
		select {
		case err := <-served:
			if err != nil {
				return 0, fmt.Errorf("floor receiver: %w", err)
			}
		case <-ctx.Done():
			return 0, context.Cause(ctx)
		}
	}
	if rcv.written != ds.Bytes {
		return 0, fmt.Errorf("floor copied %d bytes, the files hold %d", rcv.written, ds.Bytes)
	}
	return wall, nil
}

// fileSizes returns the size of each agency file of dir, agencies 1..n.
func fileSizes(dir string, n int) ([]int64, error) {
	sizes := make([]int64, n)
	for k := range sizes {
		st, err := os.Stat(filepath.Join(dir, lottery.AgencyFileName(k+1)))
		if err != nil {
			return nil, err
		}
		sizes[k] = st.Size()
	}
	return sizes, nil
}
