package engine

import (
	"testing"

	"github.com/ringmq/ringmq/flush"
	"github.com/ringmq/ringmq/flush/vfs"
)

// TestBackends runs appends, a reopen and reads through every I/O backend compiled in,
// on the OS file system (a backend the kernel lacks is skipped with its reason).
func TestBackends(t *testing.T) {
	for _, name := range flush.BackendNames() {
		t.Run(name, func(t *testing.T) {
			if b, err := flush.NewBackend(name, flush.Options{}); err != nil {
				t.Skipf("backend %s unavailable here: %v", name, err)
			} else {
				_ = b.Close()
			}
			cfg := testConfig(vfs.OS{}, SyncFlush)
			cfg.Dir, cfg.Backend = t.TempDir(), name
			s, err := Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			putN(t, s, "K", 0, 0, 40)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s2 := openStore(t, cfg)
			defer s2.Close()
			verifyQueue(t, s2, "K", 0, 40)
		})
	}
}
