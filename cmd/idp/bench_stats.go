package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// benchResult is what one scenario measured.
type benchResult struct {
	name      string
	ops       int           // requests or flows completed (the throughput's unit)
	elapsed   time.Duration // from the common start to the last worker's end
	latencies []time.Duration
	errors    int
	// firstErrors keeps a few distinct error messages, with their counts.
	firstErrors map[string]int
}

// maxDistinctErrors bounds the error messages a result keeps.
const maxDistinctErrors = 3

func (r *benchResult) perSecond() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ops) / r.elapsed.Seconds()
}

// percentile of the sorted latencies (nearest rank); 0 when there are none.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// workerTally is one worker's share of a result, merged at the end so the
// workers never contend on a lock while measuring.
type workerTally struct {
	ops       int
	latencies []time.Duration
	errors    int
	errs      map[string]int
}

func (w *workerTally) fail(err error) {
	w.errors++
	if w.errs == nil {
		w.errs = map[string]int{}
	}
	msg := err.Error()
	if _, seen := w.errs[msg]; seen || len(w.errs) < maxDistinctErrors {
		w.errs[msg]++
	}
}

func mergeTallies(name string, elapsed time.Duration, tallies []*workerTally) *benchResult {
	r := &benchResult{name: name, elapsed: elapsed, firstErrors: map[string]int{}}
	for _, t := range tallies {
		r.ops += t.ops
		r.errors += t.errors
		r.latencies = append(r.latencies, t.latencies...)
		for m, n := range t.errs {
			if _, seen := r.firstErrors[m]; seen || len(r.firstErrors) < maxDistinctErrors {
				r.firstErrors[m] += n
			}
		}
	}
	slices.Sort(r.latencies)
	return r
}

// processMemory reads a process's resident memory and its peak (VmRSS and
// VmHWM of /proc/PID/status, Linux only), in KiB.
func processMemory(pid int) (rssKiB, peakKiB int, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var dst *int
		switch k {
		case "VmRSS":
			dst = &rssKiB
		case "VmHWM":
			dst = &peakKiB
		default:
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status: %s: %w", pid, k, err)
		}
		*dst = n
	}
	return rssKiB, peakKiB, nil
}

// fmtDur prints a latency with three significant digits.
func fmtDur(d time.Duration) string {
	// The unit is chosen after rounding to three digits: 999.7µs is 1ms,
	// not %.3g's "1e+03µs".
	switch {
	case d < 999500*time.Nanosecond:
		return fmt.Sprintf("%.3gµs", float64(d)/float64(time.Microsecond))
	case d < 999500*time.Microsecond:
		return fmt.Sprintf("%.3gms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

// syncCounter hands out distinct numbers to the workers.
type syncCounter struct {
	mu sync.Mutex
	n  uint64
}

func (c *syncCounter) next() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return c.n
}

// cpuMeter measures the CPU time the server (when its pid is known) and the
// bench itself spend during a scenario's measured window.
type cpuMeter struct {
	pid                      int
	server, self             time.Duration
	serverStart, selfStart   time.Duration
	serverFailed, selfFailed bool
}

func (m *cpuMeter) begin() {
	var err error
	if m.pid > 0 {
		m.serverStart, err = processCPU(m.pid)
		m.serverFailed = err != nil
	}
	m.selfStart, err = selfCPU()
	m.selfFailed = err != nil
}

func (m *cpuMeter) end() {
	if m.pid > 0 && !m.serverFailed {
		if t, err := processCPU(m.pid); err == nil {
			m.server = t - m.serverStart
		}
	}
	if !m.selfFailed {
		if t, err := selfCPU(); err == nil {
			m.self = t - m.selfStart
		}
	}
}

// clockTicks is Linux's USER_HZ, the unit of /proc/PID/stat's times (100 on
// every architecture Go supports).
const clockTicks = 100

// processCPU reads a process's CPU time (utime + stime of /proc/PID/stat).
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count from its ')'.
	rest := string(b)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	var ticks int64
	for _, v := range f[11:13] { // utime, stime: fields 14 and 15
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}
