package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ringmq/ringmq/perf"
)

// chromiumPath finds the browser for TestDashboardInBrowser: $RINGMQ_CHROMIUM, else chromium on
// PATH. Without it the test skips, except under CI (CI set), where it fails.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("RINGMQ_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
		t.Fatalf("chromium not found and CI is set: install Debian's chromium package (apt-get install -y chromium) or set RINGMQ_CHROMIUM")
	}
	t.Skip("chromium not installed (apt-get install -y chromium); set CI=true to make this a failure")
	return ""
}

// artifactDir is $RINGMQ_ARTIFACTS, else a new temporary directory that outlives the test.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("RINGMQ_ARTIFACTS")
	if dir == "" {
		d, err := os.MkdirTemp("", "ringmq-artifacts-")
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runChromium runs headless chromium with extra arguments against url and returns stdout.
func runChromium(t *testing.T, bin, url string, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second) // generous: chromium on a loaded 2-CPU machine
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir(),
		"--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000"}, extra...)
	args = append(args, url)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\nstderr:\n%s", extra, err, stderr.String())
	}
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(line, "CONSOLE") && (strings.Contains(line, "Uncaught") || strings.Contains(line, "Error")) {
			t.Errorf("browser console error: %s", line)
		}
	}
	return stdout.String()
}

var scriptRE = regexp.MustCompile(`(?s)<script>.*?</script>`)

func TestDashboardInBrowser(t *testing.T) {
	bin := chromiumPath(t)
	rec := perf.NewRecorder(perf.RecorderConfig{})
	rec.SetEvidenceSource(func(q perf.EvidenceQuery) []perf.Evidence {
		// A stand-in for the eBPF probes: claims the middle half of the request was block I/O.
		d := q.EndNs - q.StartNs
		return []perf.Evidence{{Kind: "block_io", StartNs: q.StartNs + d/4, EndNs: q.EndNs - d/4, Detail: "nvme0n1 write 64 KiB"}}
	})
	for batch := range 6 {
		synthLoad(t, rec, uint64(batch+10), 6000)
		rec.Rotate()
	}
	synthLoad(t, rec, 99, 1000)
	base := startServer(t, rec, perf.NewRegistry())

	_, body, _ := get(t, base+"/api/latency?window=1m")
	var rep perf.LatencyReport
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatal(err)
	}
	dom := runChromium(t, bin, base+"/", "--dump-dom")
	page := scriptRE.ReplaceAllString(dom, "<script/>")
	if !strings.Contains(page, `data-state="ok"`) {
		t.Fatalf("page did not render (body data-state not ok):\n%s", page)
	}
	if m := regexp.MustCompile(`(?s)<div id="errors">(.*?)</div>`).FindStringSubmatch(page); m == nil || m[1] != "" {
		t.Fatalf("page reported errors: %q", m)
	}
	wants := []string{
		`id="spectrum-curve"`, `data-mark="99.6%"`, `data-mark="99.996%"`,
		`data-threshold-us="1000"`, `data-threshold-us="10000"`,
		`data-stage="durable"`, `data-stage="flush_submitted"`, `data-series="burn_1ms"`,
		`data-series="sends_per_sec"`, `data-series="send_p99_us"`, `id="codes-table"`,
		`id="slow-table"`, `data-code="310"`, `data-code="11"`, "block_io",
		fmt.Sprintf("%.3f%%", rep.SendsSLO.FracWithin1ms*100),
		fmt.Sprintf("%.3f%%", rep.SendsSLO.FracWithin10*100),
		commas(rep.SendsSLO.Total),
	}
	for _, w := range wants {
		if !strings.Contains(page, w) {
			t.Errorf("rendered page lacks %q", w)
		}
	}
	if n := strings.Count(page, `<tr data-seq=`); n < 5 {
		t.Errorf("slow table: got %d rows, want at least 5", n)
	}
	if n := strings.Count(page, `<circle`); n < 2 {
		t.Errorf("spectrum: got %d marked points, want p99.6 and p99.996", n)
	}

	shot := filepath.Join(artifactDir(t), "dashboard.png")
	runChromium(t, bin, base+"/", "--screenshot="+shot, "--window-size=1400,1000", "--hide-scrollbars")
	st, err := os.Stat(shot)
	if err != nil || st.Size() < 20_000 {
		t.Fatalf("screenshot %s: %v (size %d)", shot, err, sizeOf(st))
	}
	t.Logf("dashboard screenshot: %s", shot)
	full := filepath.Join(filepath.Dir(shot), "dashboard-full.png")
	runChromium(t, bin, base+"/", "--screenshot="+full, "--window-size=1400,2000", "--hide-scrollbars")
	t.Logf("full-page screenshot: %s", full)
}

// TestDashboardEmptyInBrowser loads the page of a broker that has served nothing yet: the first
// thing a new user sees must render, without script errors.
func TestDashboardEmptyInBrowser(t *testing.T) {
	bin := chromiumPath(t)
	base := startServer(t, perf.NewRecorder(perf.RecorderConfig{}), nil)
	page := scriptRE.ReplaceAllString(runChromium(t, bin, base+"/", "--dump-dom"), "<script/>")
	if !strings.Contains(page, `data-state="ok"`) {
		t.Fatalf("empty page did not render:\n%s", page)
	}
	if m := regexp.MustCompile(`(?s)<div id="errors">(.*?)</div>`).FindStringSubmatch(page); m == nil || m[1] != "" {
		t.Fatalf("empty page reported errors: %q", m)
	}
	for _, w := range []string{"no sends in this window", "waiting for the first closed interval", "no slow requests"} {
		if !strings.Contains(page, w) {
			t.Errorf("empty page lacks %q", w)
		}
	}
}

func sizeOf(st os.FileInfo) int64 {
	if st == nil {
		return 0
	}
	return st.Size()
}

// commas formats n as en-US toLocaleString does: 12,345.
func commas(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
