// Command floorsend is a sender process of the floor benchmark
// (server/bench_floor_test.go builds and runs it): it streams one agency file
// raw to the receiver in 8 KiB writes, half-closes, and waits for the
// receiver's one-byte answer that the file is durable. A program of its own,
// this small, so that the floor pays for starting a process no more than it must.
//
//	floorsend -addr host:port -file agency-N.csv
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

func main() {
	if err := send(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "floorsend:", err)
		os.Exit(1)
	}
}

func send(args []string) error {
	fs := flag.NewFlagSet("floorsend", flag.ContinueOnError)
	addr := fs.String("addr", "", "the receiver, host:port")
	file := fs.String("file", "", "the file to send")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f, err := os.Open(*file)
	if err != nil {
		return err
	}
	defer f.Close()
	c, err := net.DialTimeout("tcp", *addr, time.Minute)
	if err != nil {
		return err
	}
	conn := c.(*net.TCPConn)
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(time.Minute)); err != nil {
		return err
	}
	// Read 8 KiB, write it, again: the wrappers hide ReadFrom and WriteTo, so
	// no sendfile or splice copies the file in the kernel.
	if _, err := io.CopyBuffer(struct{ io.Writer }{conn}, struct{ io.Reader }{f}, make([]byte, 8<<10)); err != nil {
		return err
	}
	if err := conn.CloseWrite(); err != nil {
		return err
	}
	var ack [1]byte
	if _, err := io.ReadFull(conn, ack[:]); err != nil || ack[0] != 1 {
		return fmt.Errorf("no acknowledgement (byte %d): %v", ack[0], err)
	}
	return nil
}
