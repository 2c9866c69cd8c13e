package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"lotterycentral.example/server/internal/logtest"
)

// The floor of the end-to-end benchmarks (bench_test.go): the least work that
// moves the same agency files over loopback TCP into one durable file. A
// receiver in the benchmark's process accepts one connection per agency and
// appends what each sends to ONE file (whole lines, under a mutex); when a
// stream ends it fsyncs the file and answers one byte. The senders are
// processes, like the agencies: testdata/floorsend, which streams its file raw
// in 8 KiB writes, half-closes and waits for the byte. No parsing, validation,
// framing, per-batch acknowledgement or draw; one fsync per agency.

// floorSender builds testdata/floorsend beside the binaries under test.
var floorSender = sync.OnceValues(func() (string, error) {
	dir, err := binaries()
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "floorsend"), "./testdata/floorsend")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build testdata/floorsend: %w\n%s", err, out)
	}
	return filepath.Join(dir, "floorsend"), nil
})

// runFloor is one run of the floor over ds. ns/op runs from starting the
// senders to the last one's exit; fsync-ms is the time during which an fsync
// was in progress.
func runFloor(b *testing.B, ds *dataset) map[string]float64 {
	b.StopTimer()
	sender, err := floorSender()
	require.NoError(b, err)
	dir := runDir(b)
	defer os.RemoveAll(dir)
	out, err := os.OpenFile(filepath.Join(dir, "copy.csv"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	require.NoError(b, err)
	defer out.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
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
			go func() { served <- rcv.serve(conn) }()
		}
	}()

	senders := make([]*exec.Cmd, n)
	outputs := make([]bytes.Buffer, n)
	b.StartTimer()
	t0, self0 := time.Now(), selfCPU(b)
	for k := range senders {
		cmd := exec.CommandContext(b.Context(), sender, "-addr", ln.Addr().String(), "-file", ds.file(k+1))
		cmd.Stdout, cmd.Stderr = &outputs[k], &outputs[k]
		require.NoError(b, cmd.Start())
		senders[k] = cmd
	}
	for k, cmd := range senders {
		if err := cmd.Wait(); err != nil {
			b.Fatalf("floor sender %d: %v\n%s", k+1, err, &outputs[k])
		}
	}
	wall := time.Since(t0)
	b.StopTimer()
	for range n {
		require.NoError(b, <-served, "floor receiver")
	}
	receiverCPU := selfCPU(b) - self0
	require.Equal(b, ds.Bytes, rcv.written, "bytes the floor copied")
	var sent procUsage
	for _, cmd := range senders {
		sent = sent.plus(usageOf(cmd.ProcessState))
	}
	// Named as the end-to-end runs name them, so that CPU per bet is
	// measured the same way: the receiver stands for the central, the
	// senders for the agencies.
	figures := map[string]float64{"ns/op": float64(wall.Nanoseconds()), "fsync-ms": ms(rcv.fsyncBusy()),
		"central-cpu-s": receiverCPU.Seconds()}
	sent.perProcess(figures, n)
	return figures
}

// selfCPU is the user and system CPU this process has used so far: during a
// floor run, its receiver's (the benchmark does nothing else meanwhile).
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru), "getrusage")
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// floorReceiver appends every connection's bytes to one file.
type floorReceiver struct {
	out     *os.File
	mu      sync.Mutex // written and syncs
	written int64
	syncs   [][2]time.Time // start and end of each fsync
}

func (r *floorReceiver) append(p []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, err := r.out.Write(p)
	r.written += int64(n)
	return err
}

// serve copies one stream into the file in whole lines, so streams interleave
// only at line boundaries; at EOF it fsyncs the file and answers one byte.
func (r *floorReceiver) serve(conn net.Conn) error {
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(logtest.DefaultBound)); err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	carry := 0 // bytes of an unfinished line at the start of buf
	for {
		n, err := conn.Read(buf[carry:])
		carry += n
		if i := bytes.LastIndexByte(buf[:carry], '\n'); i >= 0 {
			if err := r.append(buf[:i+1]); err != nil {
				return err
			}
			carry = copy(buf, buf[i+1:carry])
		} else if carry == len(buf) { // a line longer than the buffer
			if err := r.append(buf); err != nil {
				return err
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
	if err := r.append(buf[:carry]); err != nil {
		return err
	}
	start := time.Now()
	if err := r.out.Sync(); err != nil {
		return err
	}
	r.mu.Lock()
	r.syncs = append(r.syncs, [2]time.Time{start, time.Now()})
	r.mu.Unlock()
	_, err := conn.Write([]byte{1})
	return err
}

// fsyncBusy is the time during which at least one fsync was in progress.
func (r *floorReceiver) fsyncBusy() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	slices.SortFunc(r.syncs, func(a, b [2]time.Time) int { return a[0].Compare(b[0]) })
	var busy time.Duration
	var end time.Time // of the fsyncs seen so far
	for _, s := range r.syncs {
		if s[1].After(end) {
			start := s[0]
			if end.After(start) {
				start = end
			}
			busy += s[1].Sub(start)
			end = s[1]
		}
	}
	return busy
}
