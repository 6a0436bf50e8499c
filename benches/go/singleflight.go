// Command singleflight measures Go's golang.org/x/sync/singleflight in the scenarios of the
// Rust `compare` bench where they apply: a solo call and a herd on one key.
//
// It needs no module download: run it GOPATH-style on the sources Debian installs
// (golang-golang-x-sync-dev), as `cargo xtask bench go` does:
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go run benches/go/singleflight.go [flags]
//
// Output: one line per scenario, `name key=value ...`, read by the benches' `go` binary.
//
//   - solo: one goroutine calls Do in sequence, a distinct key each (keys prepared beforehand:
//     Go's keys are strings), the work returns at once. ns per call: the median and the best
//     repetition; allocations per call.
//   - herd: `callers` goroutines call one key; the work counts its executions and waits until
//     every caller has registered. Registration is visible only through DoChan (Do registers
//     inside the call), so the herd's callers use DoChan and then receive from the channel.
//     Each herd is paired with a no-dedup herd of the same goroutines running the work
//     themselves (before or after it, alternately): ns per caller from the first spawn to the
//     last value, and the net per caller (the pair's difference), median of each repetition,
//     then the median of those.
package main

import (
	"flag"
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

var sink int64

func median(values []float64) float64 {
	sorted := append([]float64(nil), values...)
	sort.Float64s(sorted)
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

func mallocs() uint64 {
	var stats runtime.MemStats
	runtime.ReadMemStats(&stats)
	return stats.Mallocs
}

// soloSample makes len(keys) sequential calls and returns ns per call.
func soloSample(g *singleflight.Group, keys []string) float64 {
	start := time.Now()
	for i, key := range keys {
		v, _, _ := g.Do(key, func() (interface{}, error) { return int64(i), nil })
		sink += v.(int64)
	}
	return float64(time.Since(start).Nanoseconds()) / float64(len(keys))
}

func solo(reps int, sample time.Duration) {
	var g singleflight.Group
	keys := make([]string, 2000)
	for i := range keys {
		keys[i] = strconv.Itoa(i)
	}
	perCall := soloSample(&g, keys) // warm-up and calibration
	calls := int(float64(sample.Nanoseconds()) / perCall)
	if calls < 2000 {
		calls = 2000
	}
	keys = make([]string, calls)
	for i := range keys {
		keys[i] = strconv.Itoa(i)
	}
	ns := make([]float64, reps)
	for rep := range ns {
		ns[rep] = soloSample(&g, keys)
	}
	best := ns[0]
	for _, v := range ns {
		if v < best {
			best = v
		}
	}
	before := mallocs()
	soloSample(&g, keys)
	allocs := float64(mallocs()-before) / float64(len(keys))
	fmt.Printf("solo reps=%d calls=%d ns_median=%.1f ns_best=%.1f allocations_per_call=%.2f\n",
		reps, calls, median(ns), best, allocs)
}

// herd runs one herd of `callers` goroutines on `key`; dedup selects singleflight or each
// caller running the work itself. It returns the elapsed time and the executions.
func herd(g *singleflight.Group, key string, callers int, dedup bool) (time.Duration, int) {
	var executions, registered int64
	release := make(chan struct{})
	var once sync.Once
	tick := func() {
		if atomic.AddInt64(&registered, 1) == int64(callers) {
			once.Do(func() { close(release) })
		}
	}
	work := func() (interface{}, error) {
		atomic.AddInt64(&executions, 1)
		<-release
		return int64(len(key)), nil
	}
	var done sync.WaitGroup
	done.Add(callers)
	start := time.Now()
	for i := 0; i < callers; i++ {
		go func() {
			defer done.Done()
			if dedup {
				ch := g.DoChan(key, work)
				tick()
				sink += (<-ch).Val.(int64)
			} else {
				tick()
				v, _ := work()
				sink += v.(int64)
			}
		}()
	}
	done.Wait()
	return time.Since(start), int(atomic.LoadInt64(&executions))
}

func herds(reps, herdsPerRep, callers int) {
	var g singleflight.Group
	var medians, nets []float64
	executions, maxExecutions := 0, 0
	for rep := 0; rep < reps; rep++ {
		var times, net []float64
		for h := 0; h < herdsPerRep; h++ {
			key := strconv.Itoa(rep*herdsPerRep + h)
			var floor time.Duration
			if h%2 == 1 {
				floor, _ = herd(&g, key, callers, false)
			}
			elapsed, n := herd(&g, key, callers, true)
			if h%2 == 0 {
				floor, _ = herd(&g, key, callers, false)
			}
			executions += n
			if n > maxExecutions {
				maxExecutions = n
			}
			per := float64(elapsed.Nanoseconds()) / float64(callers)
			times = append(times, per)
			net = append(net, per-float64(floor.Nanoseconds())/float64(callers))
		}
		medians = append(medians, median(times))
		nets = append(nets, median(net))
	}
	before := mallocs()
	herd(&g, "counted", callers, true)
	allocs := float64(mallocs()-before) / float64(callers)
	fmt.Printf("herd reps=%d herds=%d callers=%d ns_per_caller=%.1f net_ns_per_caller=%.1f "+
		"executions_mean=%.2f executions_max=%d allocations_per_caller=%.3f\n",
		reps, herdsPerRep, callers, median(medians), median(nets),
		float64(executions)/float64(reps*herdsPerRep), maxExecutions, allocs)
}

func main() {
	reps := flag.Int("reps", 15, "repetitions (solo runs three times as many)")
	sampleMs := flag.Int("sample-ms", 10, "target length of a solo sample, ms")
	herdsPerRep := flag.Int("herds", 40, "herds per repetition")
	callers := flag.Int("callers", 1000, "callers per herd")
	flag.Parse()
	fmt.Printf("go version=%s gomaxprocs=%d\n", runtime.Version(), runtime.GOMAXPROCS(0))
	solo(3**reps, time.Duration(*sampleMs)*time.Millisecond)
	herds(*reps, *herdsPerRep, *callers)
}
