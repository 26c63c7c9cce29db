package broker

import (
	"context"
	"errors"
)

// registration keeps the broker registered with every name server: every
// RegisterInterval, at once after a topic is created or deleted, and unregistered at
// Shutdown. The name server's Registrar (netio/namesrv) is not in the tree yet, so a
// broker configured with name servers is refused by New rather than silently left
// unregistered; without name servers registration does nothing.
type registration struct{}

var errNoRegistrar = errors.New("broker: registration with name servers (netio/namesrv.Registrar) is not available in this build yet; run without NamesrvAddrs")

func newRegistration(b *Broker) (*registration, error) {
	if len(b.cfg.NamesrvAddrs) > 0 {
		return nil, errNoRegistrar
	}
	return &registration{}, nil
}

func (r *registration) start()                         {}
func (r *registration) trigger()                       {}
func (r *registration) stop(ctx context.Context) error { return nil }
