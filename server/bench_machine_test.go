package main

import (
	"os/exec"
	"syscall"
	"testing"
)

// BenchmarkMachine measures what this machine charges for the events every
// process pays for whatever it does, so that a report can be read against
// another machine's: the end-to-end runs start one process per agency, and on
// a virtual machine these cost many times what they cost on bare metal.
//
//	page-fault      ns/op: the first touch of a page of fresh memory
//	syscall         ns/op: the cheapest system call (getppid)
//	process-echo    ns/op: one byte to another process and back through two
//	                pipes, read with blocking system calls: two wake-ups
//
// make bench runs it with the micro-benchmarks.
func BenchmarkMachine(b *testing.B) {
	b.Run("page-fault", func(b *testing.B) {
		const pages = 256
		size := pages * syscall.Getpagesize()
		for b.Loop() {
			mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
			if err != nil {
				b.Fatal(err)
			}
			for i := 0; i < size; i += syscall.Getpagesize() {
				mem[i] = 1
			}
			if err := syscall.Munmap(mem); err != nil {
				b.Fatal(err)
			}
		}
		// One op is pages faults (and a map and an unmap, which cost far less).
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*pages), "ns/fault")
	})
	b.Run("syscall", func(b *testing.B) {
		for b.Loop() {
			syscall.Getppid()
		}
	})
	b.Run("process-echo", func(b *testing.B) {
		cat, err := exec.LookPath("cat")
		if err != nil {
			b.Skip("no cat to echo through")
		}
		var to, from [2]int // blocking pipes: no poller between the two processes
		if err := syscall.Pipe2(to[:], syscall.O_CLOEXEC); err != nil {
			b.Fatal(err)
		}
		if err := syscall.Pipe2(from[:], syscall.O_CLOEXEC); err != nil {
			b.Fatal(err)
		}
		pid, err := syscall.ForkExec(cat, []string{"cat"}, &syscall.ProcAttr{Files: []uintptr{uintptr(to[0]), uintptr(from[1]), 2}})
		syscall.Close(to[0])
		syscall.Close(from[1])
		if err != nil {
			b.Fatal(err)
		}
		defer func() {
			syscall.Close(to[1]) // cat sees the end of its input and exits
			syscall.Close(from[0])
			var ws syscall.WaitStatus
			_, _ = syscall.Wait4(pid, &ws, 0, nil)
		}()
		one := []byte{'x'}
		for b.Loop() {
			if _, err := syscall.Write(to[1], one); err != nil {
				b.Fatal(err)
			}
			if n, err := syscall.Read(from[0], one); n != 1 || err != nil {
				b.Fatalf("read %d bytes: %v", n, err)
			}
		}
	})
}
