package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Peak resident set size of the processes the harness starts, in KiB: VmHWM in
// /proc/<pid>/status, the kernel's high-water mark of the process's own RSS,
// polled while it runs (the last value read before exit is the peak so far).
//
// Not ru_maxrss from wait4 (what `/usr/bin/time -f %M` prints): Go starts a
// child with a clone that shares the parent's memory until exec, and the
// child's ru_maxrss then counts the parent's RSS — here, the harness's own.

// readVmHWM returns VmHWM of pid in KiB.
func readVmHWM(pid int) (int64, bool) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		return kib, err == nil
	}
	return 0, false
}

// rssPoller reads VmHWM of every watched pid on one goroutine, so watching a
// hundred agencies costs one timer, not a hundred.
type rssPoller struct {
	mu    sync.Mutex
	peaks map[int]int64 // pid → highest VmHWM seen
	stop  chan struct{}
	done  chan struct{}
}

const rssPollEvery = 50 * time.Millisecond

func newRSSPoller() *rssPoller {
	p := &rssPoller{peaks: make(map[int]int64), stop: make(chan struct{}), done: make(chan struct{})}
	go p.loop()
	return p
}

// watch adds pid and reads it at once, so even a short-lived process is read.
func (p *rssPoller) watch(pid int) {
	kib, _ := readVmHWM(pid)
	p.mu.Lock()
	p.peaks[pid] = max(p.peaks[pid], kib)
	p.mu.Unlock()
}

// sample reads pid now (used for the server right before it is sent SIGTERM).
func (p *rssPoller) sample(pid int) { p.watch(pid) }

// peak returns the highest VmHWM seen for pid.
func (p *rssPoller) peak(pid int) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peaks[pid]
}

// forget stops reading pid (it exited).
func (p *rssPoller) forget(pid int) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	kib := p.peaks[pid]
	delete(p.peaks, pid)
	return kib
}

func (p *rssPoller) loop() {
	defer close(p.done)
	t := time.NewTicker(rssPollEvery)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		p.mu.Lock()
		pids := make([]int, 0, len(p.peaks))
		for pid := range p.peaks {
			pids = append(pids, pid)
		}
		p.mu.Unlock()
		for _, pid := range pids {
			if kib, ok := readVmHWM(pid); ok {
				p.mu.Lock()
				if old, watched := p.peaks[pid]; watched {
					p.peaks[pid] = max(old, kib)
				}
				p.mu.Unlock()
			}
		}
	}
}

func (p *rssPoller) close() {
	close(p.stop)
	<-p.done
}
