//go:build linux && (386 || amd64)

package bpf

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// BenchmarkWriteFdatasync measures what the probes cost the broker's durable write: a 4 KiB
// pwrite + fdatasync into already-written blocks (what the flusher does), with no probes, the
// default probes, all of them (run-queue delay too), and each probe alone. It reports the p50 and p99 of one
// write+fdatasync besides ns/op. The disk is shared with other processes: compare the
// variants of one run, over several runs (-count), never single numbers.
//
//	go test -run '^$' -bench 'WriteFdatasync/(off|default|all)$' -benchtime 2000x ./bpf
//
// docs/ebpf.md runs the variants interleaved, one process each, several rounds.
func BenchmarkWriteFdatasync(b *testing.B) {
	type variant struct {
		name   string
		probes []string // nil: no Set at all
	}
	variants := []variant{{"off", nil}, {"default", DefaultProbes()}, {"all", AllProbes()}}
	for _, name := range AllProbes() {
		variants = append(variants, variant{"only_" + name, []string{name}})
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			if v.probes != nil {
				s, err := Open(Config{Probes: v.probes})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
				if err != nil {
					b.Logf("no BPF run-time stats: %v", err)
				} else {
					defer stats.Close()
					before := bpfRunTime(b, s)
					defer func() {
						after := bpfRunTime(b, s)
						b.ReportMetric(float64(after.ns-before.ns)/float64(b.N), "bpf-ns/op")
						b.ReportMetric(float64(after.runs-before.runs)/float64(b.N), "bpf-runs/op")
					}()
				}
				for _, name := range v.probes {
					if err := s.Err(name); err != nil {
						if IsUnavailable(err) && os.Getenv("EBPF_REQUIRED") == "" {
							b.Skipf("probe %s unavailable: %v", name, err)
						}
						b.Fatalf("probe %s: %+v", name, err)
					}
				}
			}
			benchWriteFdatasync(b)
		})
	}
}

type runTime struct{ ns, runs uint64 }

// bpfRunTime sums the kernel's run-time statistics of every loaded program of s: time spent in
// the programs and how often they ran, in the whole system (sys_enter runs for every
// syscall of every process, sched_switch for every context switch).
func bpfRunTime(b *testing.B, s *Set) runTime {
	var rt runTime
	for _, p := range s.probes {
		lp, ok := p.impl.(*linuxProbe)
		if !ok {
			continue
		}
		for name, prog := range lp.coll.Programs {
			st, err := prog.Stats()
			if err != nil {
				b.Fatal(err)
			}
			if testing.Verbose() && st.RunCount > 0 {
				b.Logf("%s: %d runs, %d ns/run (cumulative)", name, st.RunCount, int64(st.Runtime)/int64(st.RunCount))
			}
			rt.ns += uint64(st.Runtime)
			rt.runs += st.RunCount
		}
	}
	return rt
}

func benchWriteFdatasync(b *testing.B) {
	const fileBytes = 1 << 20
	f, err := os.OpenFile(b.TempDir()+"/data", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, fileBytes)); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	fd := int(f.Fd())
	buf := make([]byte, 4096)
	lat := make([]int64, 0, 1<<16)
	var off int64
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		if _, err := unix.Pwrite(fd, buf, off); err != nil {
			b.Fatal(err)
		}
		if err := unix.Fdatasync(fd); err != nil {
			b.Fatal(err)
		}
		if len(lat) < cap(lat) {
			lat = append(lat, int64(time.Since(t0)))
		}
		off = (off + int64(len(buf))) % fileBytes
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2])/1e3, "p50-us")
		b.ReportMetric(float64(lat[len(lat)*99/100])/1e3, "p99-us")
	}
}

// BenchmarkWriteFdatasyncAB alternates, in one process, blocks of 100 write+fdatasync with
// the probes detached and attached, so that the machine's changing load falls on both sides
// alike; it reports both sides' p50 and p99. The Set's reader goroutines run in both states, so
// this is the in-kernel cost of the probes.
//
//	go test -run '^$' -bench WriteFdatasyncAB -benchtime 4000x ./bpf
func BenchmarkWriteFdatasyncAB(b *testing.B) {
	type variant struct {
		name   string
		probes []string
	}
	variants := []variant{{"default", DefaultProbes()}, {"all", AllProbes()}}
	for _, name := range AllProbes() {
		variants = append(variants, variant{"only_" + name, []string{name}})
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			s, err := Open(Config{Probes: []string{}})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			setAll := func(on bool) {
				for _, name := range v.probes {
					if err := s.SetEnabled(name, on); err != nil {
						if IsUnavailable(err) && os.Getenv("EBPF_REQUIRED") == "" {
							b.Skipf("probe %s unavailable: %v", name, err)
						}
						b.Fatalf("probe %s: %+v", name, err)
					}
				}
			}
			f, err := os.OpenFile(b.TempDir()+"/data", os.O_RDWR|os.O_CREATE, 0o600)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			const fileBytes, block = 1 << 20, 100
			if _, err := f.Write(make([]byte, fileBytes)); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			fd, buf := int(f.Fd()), make([]byte, 4096)
			var lat [2][]int64 // [off, on]
			var off int64
			i, on := 0, false
			for b.Loop() {
				if i%block == 0 {
					b.StopTimer()
					on = !on
					setAll(on)
					b.StartTimer()
				}
				i++
				t0 := time.Now()
				if _, err := unix.Pwrite(fd, buf, off); err != nil {
					b.Fatal(err)
				}
				if err := unix.Fdatasync(fd); err != nil {
					b.Fatal(err)
				}
				if side := lat[boolIndex(on)]; len(side) < 1<<16 {
					lat[boolIndex(on)] = append(side, int64(time.Since(t0)))
				}
				off = (off + int64(len(buf))) % fileBytes
			}
			for side, name := range []string{"off", "on"} {
				l := lat[side]
				if len(l) == 0 {
					continue
				}
				slices.Sort(l)
				b.ReportMetric(float64(l[len(l)/2])/1e3, name+"-p50-us")
				b.ReportMetric(float64(l[len(l)*99/100])/1e3, name+"-p99-us")
			}
		})
	}
}

func boolIndex(on bool) int {
	if on {
		return 1
	}
	return 0
}
