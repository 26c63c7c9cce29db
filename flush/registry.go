package flush

import (
	"fmt"
	"sort"
	"strings"
)

// Options are the settings every backend accepts; a backend ignores those it has no use for.
type Options struct {
	// RingEntries is the io_uring submission queue size (uring backends). 0 means the
	// backend's default.
	RingEntries uint32
	// MaxWriteBytes bounds one commit's bytes (uring-direct sizes its registered
	// buffers from it). 0 means the backend's default.
	MaxWriteBytes int
	// AppendOnly promises that each file is written front to back and that the bytes
	// past the last written byte are zeros nobody needs kept (the commit log's
	// pre-written segments, whose torn tails recovery zeroes). A backend writing whole
	// blocks may then pad the tail block with zeros instead of reading it back.
	AppendOnly bool
}

type constructor func(Options) (Backend, error)

// backends is filled by each backend's init; it is read-only afterwards.
var backends = map[string]constructor{}

func register(name string, c constructor) {
	if _, dup := backends[name]; dup {
		panic("BUG: flush backend registered twice: " + name)
	}
	backends[name] = c
}

// BackendNames returns the names of the backends compiled in, sorted.
func BackendNames() []string {
	names := make([]string, 0, len(backends))
	for n := range backends {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// NewBackend returns the backend of that name.
func NewBackend(name string, opts Options) (Backend, error) {
	c, ok := backends[name]
	if !ok {
		return nil, fmt.Errorf("flush: unknown I/O backend %q (have %s)", name, strings.Join(BackendNames(), ", "))
	}
	b, err := c(opts)
	if err != nil {
		return nil, fmt.Errorf("flush: backend %s: %w", name, err)
	}
	return b, nil
}
