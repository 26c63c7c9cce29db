//go:build linux && (386 || amd64)

package pagefault

import "github.com/cilium/ebpf"

// Spec returns the probe's programs and maps as compiled, not yet loaded.
func Spec() (*ebpf.CollectionSpec, error) { return loadPagefault() }
