//go:build !(linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le))

package iouring

// Ring is unavailable on this platform; New returns ErrNotSupported and the methods
// are never reached.
type Ring struct{}

// New returns ErrNotSupported: io_uring exists only on 64-bit Linux.
func New(entries uint32) (*Ring, error) { return nil, ErrNotSupported }

func (r *Ring) Close() error                                          { return ErrNotSupported }
func (r *Ring) Features() uint32                                      { return 0 }
func (r *Ring) SQEntries() int                                        { return 0 }
func (r *Ring) MaxInFlight() int                                      { return 0 }
func (r *Ring) InFlight() int                                         { return 0 }
func (r *Ring) Supports(op Op) bool                                   { return false }
func (r *Ring) Submit() (int, error)                                  { return 0, ErrNotSupported }
func (r *Ring) SubmitAndWait(int) (int, error)                        { return 0, ErrNotSupported }
func (r *Ring) RegisterBuffers([][]byte) error                        { return ErrNotSupported }
func (r *Ring) UnregisterBuffers() error                              { return ErrNotSupported }
func (r *Ring) RegisterFiles([]int32) error                           { return ErrNotSupported }
func (r *Ring) UnregisterFiles() error                                { return ErrNotSupported }
func (r *Ring) Nop(Flags, *Completion) error                          { return ErrNotSupported }
func (r *Ring) Write(int32, []byte, uint64, Flags, *Completion) error { return ErrNotSupported }
func (r *Ring) Read(int32, []byte, uint64, Flags, *Completion) error  { return ErrNotSupported }
func (r *Ring) WriteFixed(int32, []byte, uint16, uint64, Flags, *Completion) error {
	return ErrNotSupported
}
func (r *Ring) ReadFixed(int32, []byte, uint16, uint64, Flags, *Completion) error {
	return ErrNotSupported
}
func (r *Ring) Writev(int32, []Iovec, uint64, Flags, *Completion) error { return ErrNotSupported }
func (r *Ring) Readv(int32, []Iovec, uint64, Flags, *Completion) error  { return ErrNotSupported }
func (r *Ring) Fsync(int32, uint32, Flags, *Completion) error           { return ErrNotSupported }
func (r *Ring) Fallocate(int32, uint32, uint64, uint64, Flags, *Completion) error {
	return ErrNotSupported
}

func (r *Ring) SetLastRWFlags(uint32) {}
