package engine

import (
	"errors"
	"syscall"
	"testing"

	"github.com/ringmq/ringmq/flush/vfs"
)

// TestFsyncFailureIsSticky: a failed fdatasync of the commit log fails the waiting
// append with ErrStoreFailed and every later append too; reads keep working; a reopen
// recovers what was durable.
func TestFsyncFailureIsSticky(t *testing.T) {
	mem := vfs.NewMem()
	in := vfs.NewInjector()
	cfg := testConfig(vfs.NewFaulty(mem, in), SyncFlush)
	s := openStore(t, cfg)
	putN(t, s, "F", 0, 0, 5)
	in.Add(vfs.Rule{Op: vfs.OpSync, PathContains: "commitlog", Nth: 1, Err: syscall.EIO})
	if _, err := s.Put(msg("F", 0, 5)); !errors.Is(err, ErrStoreFailed) {
		t.Fatalf("append over a failed fsync: %v, want ErrStoreFailed", err)
	}
	if _, err := s.Put(msg("F", 0, 6)); !errors.Is(err, ErrStoreFailed) {
		t.Fatalf("later append: %v, want ErrStoreFailed", err)
	}
	var r GetResult
	if err := s.GetMessages("F", 0, 0, 32, 0, nil, &r); err != nil || r.Status != Found || len(r.Records) != 5 {
		t.Fatalf("reads after the failure: %v %v %d", err, r.Status, len(r.Records))
	}
	r.Release()
	_ = s.Close()
	in.Reset()
	s2 := openStore(t, testConfig(mem, SyncFlush))
	defer s2.Close()
	verifyQueue(t, s2, "F", 0, int(s2.MaxOffset("F", 0)))
	if s2.MaxOffset("F", 0) < 5 {
		t.Fatalf("lost acked messages: max %d", s2.MaxOffset("F", 0))
	}
}

// TestDiskFullRefusesThenResumes: with the disk full, appends fail with ErrDiskFull
// and resume by themselves once space returns.
func TestDiskFullRefusesThenResumes(t *testing.T) {
	in := vfs.NewInjector()
	s := openStore(t, testConfig(vfs.NewFaulty(vfs.NewMem(), in), SyncFlush))
	defer s.Close()
	putN(t, s, "D", 0, 0, 3)
	in.SetNoSpace(true)
	var err error
	for i := 0; i < 100 && !errors.Is(err, ErrDiskFull); i++ { // the log notices on its next write or check
		_, err = s.Put(msg("D", 0, 3))
	}
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("append on a full disk: %v, want ErrDiskFull", err)
	}
	in.SetNoSpace(false)
	for i := 0; ; i++ {
		if _, err = s.Put(msg("D", 0, 3)); err == nil {
			break
		}
		if !errors.Is(err, ErrDiskFull) || i == 100000 {
			t.Fatalf("after space returned: %v", err)
		}
	}
}

// TestDispatchRetriesAfterWriteErrors: failed consume-queue and index writes hold
// dispatching back (reported in Stats) until a retry succeeds; nothing is lost.
func TestDispatchRetriesAfterWriteErrors(t *testing.T) {
	for _, path := range []string{"consumequeue", "index"} {
		t.Run(path, func(t *testing.T) {
			in := vfs.NewInjector()
			cfg := testConfig(vfs.NewFaulty(vfs.NewMem(), in), SyncFlush)
			cfg.CheckpointInterval = 2e6
			s := openStore(t, cfg)
			defer s.Close()
			putN(t, s, "W", 0, 0, 3)
			in.Add(vfs.Rule{Op: vfs.OpWrite, PathContains: path, Nth: 1, Err: syscall.EIO})
			in.Add(vfs.Rule{Op: vfs.OpWrite, PathContains: path, Nth: 2, Err: syscall.EIO})
			putN(t, s, "W", 0, 3, 40)
			if in.Fired() == 0 {
				t.Fatal("no fault fired")
			}
			verifyQueue(t, s, "W", 0, 40)
			if got, err := s.QueryByKey("W", "k33", 5, 0, 1<<62); err != nil || len(got) != 1 {
				t.Fatalf("index after retried writes: %v %v", got, err)
			}
			if st := s.Stats(); st.DispatchFailed != "" {
				t.Fatalf("still failing: %s", st.DispatchFailed)
			}
		})
	}
}
