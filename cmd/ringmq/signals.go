package main

// Process lifecycle shared by the subcommands: the logger, and running servers until
// SIGTERM/SIGINT.
//
// On the first signal every server stops accepting and finishes its in-flight requests
// (its Shutdown), in the reverse order of start (so in `ringmq dev` the broker goes
// before the name server it registers with), then the store is flushed and closed, and
// the process exits 0. A second signal during that exits at once with status 1.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// shutdownTimeout bounds the graceful part of a shutdown: in-flight requests (a held
// long-poll pull answers within it) and the final flush.
const shutdownTimeout = 30 * time.Second

// newLogger returns a text slog logger to w at the named level.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// server is one long-running component: serve blocks until shutdown is called (or it
// fails); shutdown stops accepting and waits for in-flight work, up to ctx.
type server struct {
	name     string
	serve    func() error
	shutdown func(ctx context.Context) error
}

// notifySignals starts catching SIGTERM and SIGINT. Subcommands call it before they open
// anything, so a signal during a long startup (recovering a store) is not lost: the
// servers then start and stop at once, cleanly.
func notifySignals() chan os.Signal {
	sigc := make(chan os.Signal, 2)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT)
	return sigc
}

// runUntilSignal starts every server, waits for a signal on sigc (or for a server to
// fail), shuts them down in reverse order, then calls closeAll (flush and close the
// store). It returns the first server failure, or nil after a clean signal-driven
// shutdown.
func runUntilSignal(log *slog.Logger, sigc chan os.Signal, servers []server, closeAll func() error) error {
	defer signal.Stop(sigc)

	errc := make(chan error, len(servers))
	for _, s := range servers {
		go func() {
			if err := s.serve(); err != nil {
				errc <- fmt.Errorf("%s: %w", s.name, err)
				return
			}
			errc <- nil
		}()
	}

	var failure error
	select {
	case sig := <-sigc:
		log.Info("signal received; shutting down (a second signal forces exit)", "signal", sig.String())
	case err := <-errc:
		failure = err
		if failure == nil {
			failure = errors.New("a server stopped by itself")
		}
		log.Error("server stopped; shutting down", "err", failure)
	}
	go func() {
		sig := <-sigc
		log.Error("second signal: exiting without a clean shutdown", "signal", sig.String())
		os.Exit(1)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	var errs []error
	for i := len(servers) - 1; i >= 0; i-- {
		s := servers[i]
		start := time.Now()
		if err := s.shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shut down %s: %w", s.name, err))
			continue
		}
		log.Info("stopped", "component", s.name, "took", time.Since(start).Round(time.Millisecond))
	}
	if closeAll != nil {
		if err := closeAll(); err != nil {
			errs = append(errs, err)
		}
	}
	if failure != nil {
		errs = append([]error{failure}, errs...)
	}
	return errors.Join(errs...)
}
