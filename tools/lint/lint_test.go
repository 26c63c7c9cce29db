// Package lint enforces ringmq's import rule (DESIGN.md, "Packages and the import rule")
// with `go list`, the way pebble's TestForbiddenImports does: an import may only point
// down the list cmd/tools -> netio -> replica -> engine -> flush -> iouring/perf, with bpf
// beside them, and third-party modules only where the design names them.
package lint

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/ringmq/ringmq"

// allowed lists, for each top-level folder, the other top-level folders its packages
// may import. Packages inside one top-level folder may import each other freely, and
// internal/ is open to all. cmd and tools may import anything.
var allowed = map[string][]string{
	"netio":    {"replica", "engine", "flush", "iouring", "perf"},
	"replica":  {"engine", "flush", "perf"},
	"engine":   {"flush", "iouring", "perf"},
	"flush":    {"iouring", "perf"},
	"bpf":      {"perf"},
	"iouring":  {},
	"perf":     {},
	"internal": {},
}

// thirdParty lists the modules outside the standard library that each top-level folder
// may import (cmd and tools: any). golang.org/x/sys is open to all.
var thirdParty = map[string][]string{
	"perf": {"github.com/HdrHistogram/hdrhistogram-go", "github.com/valyala/fasthttp"},
	"bpf":  {"github.com/cilium/ebpf"},
}

func TestImportRule(t *testing.T) {
	root := moduleRoot(t)
	cmd := exec.Command("go", "list", "-e", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	checked := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		pkg, imports := fields[0], fields[1:]
		top := topLevel(pkg)
		if top == "" || top == "cmd" || top == "tools" {
			continue
		}
		checked++
		for _, imp := range imports {
			if msg := violation(top, imp); msg != "" {
				t.Errorf("%s imports %s: %s", pkg, imp, msg)
			}
		}
	}
	if checked == 0 {
		t.Fatalf("go list returned no product packages to check; got output %q", out)
	}
}

// violation returns why pkg (in top-level folder top) may not import imp, or "".
func violation(top, imp string) string {
	if impTop := topLevel(imp); impTop != "" {
		if impTop == top || impTop == "internal" {
			return ""
		}
		rules, known := allowed[top]
		if !known {
			return "top-level folder " + top + " is not in DESIGN.md's list"
		}
		for _, a := range rules {
			if a == impTop {
				return ""
			}
		}
		return top + "/ may import only " + strings.Join(rules, ", ") + " (DESIGN.md import rule)"
	}
	if isStdlib(imp) || strings.HasPrefix(imp, "golang.org/x/sys/") {
		return ""
	}
	for _, m := range thirdParty[top] {
		if imp == m || strings.HasPrefix(imp, m+"/") {
			return ""
		}
	}
	return "third-party module not allowed in " + top + "/ (DESIGN.md names its dependencies)"
}

// topLevel returns the module's top-level folder of an import path, or "" when the
// path is outside the module.
func topLevel(path string) string {
	if path == module {
		return "."
	}
	rest, ok := strings.CutPrefix(path, module+"/")
	if !ok {
		return ""
	}
	top, _, _ := strings.Cut(rest, "/")
	return top
}

func isStdlib(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

func moduleRoot(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

func TestViolation(t *testing.T) {
	cases := []struct {
		top, imp string
		ok       bool
	}{
		{"engine", module + "/flush/vfs", true},
		{"engine", module + "/netio/remoting", false},
		{"flush", module + "/engine", false},
		{"netio", module + "/engine/record", true},
		{"perf", "github.com/valyala/fasthttp", true},
		{"engine", "github.com/valyala/fasthttp", false},
		{"iouring", "golang.org/x/sys/unix", true},
		{"bpf", "github.com/cilium/ebpf/link", true},
		{"netio", "github.com/cilium/ebpf", false},
		{"engine", module + "/internal/assert", true},
	}
	for _, c := range cases {
		got := violation(c.top, c.imp) == ""
		if got != c.ok {
			t.Errorf("violation(%q, %q) allowed = %v, want %v", c.top, c.imp, got, c.ok)
		}
	}
}
