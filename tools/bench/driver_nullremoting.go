package bench

import (
	"context"
	"errors"
)

// The "null" driver is the ringmq driver pointed at an in-process NullServer: the floor
// of a ringmq run, with the same client, remoting codec and loopback TCP, and a responder
// that does nothing but answer. ("null-inproc" takes the network out as well.)

func init() { drivers["null"] = newNullRemotingDriver }

type nullRemotingDriver struct {
	*ringmqDriver
	srv *NullServer
}

func newNullRemotingDriver(ctx context.Context, _ DriverOptions) (Driver, error) {
	srv, err := StartNullServer()
	if err != nil {
		return nil, err
	}
	d, err := newRingMQDriver(ctx, DriverOptions{NamesrvAddr: srv.Addr()})
	if err != nil {
		_ = srv.Close()
		return nil, err
	}
	return &nullRemotingDriver{ringmqDriver: d.(*ringmqDriver), srv: srv}, nil
}

func (d *nullRemotingDriver) Name() string { return "null" }

func (d *nullRemotingDriver) Close() error {
	return errors.Join(d.ringmqDriver.Close(), d.srv.Close())
}
