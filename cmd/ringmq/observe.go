package main

// The broker's observability: the per-request latency recorder (stage histograms, SLO
// counters, slow-request log), its optional HdrHistogram interval log (--hdr-log), and
// the admin HTTP server (--admin-listen) that serves them with the Prometheus metrics.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ringmq/ringmq/perf"
	"github.com/ringmq/ringmq/perf/admin"
)

type observability struct {
	rec   *perf.Recorder
	reg   *perf.Registry
	admin *admin.Server
}

// startObservability starts the recorder (and its hdr log) and the admin server.
func startObservability(conf brokerConf, log *slog.Logger) (*observability, error) {
	o := &observability{rec: perf.NewRecorder(perf.RecorderConfig{}), reg: perf.NewRegistry()}
	if conf.HDRLogPath != "" {
		if err := o.rec.OpenHdrLog(conf.HDRLogPath); err != nil {
			return nil, fmt.Errorf("--hdr-log: %w", err)
		}
	}
	o.rec.Start()
	o.admin = admin.New(admin.Config{Listen: conf.AdminListen}, o.rec, o.reg)
	if err := o.admin.Start(); err != nil {
		return nil, errors.Join(err, o.rec.Close())
	}
	log.Info("admin HTTP listening", "addr", o.admin.Addr(), "hdr_log", conf.HDRLogPath)
	return o, nil
}

// close stops the admin server, then closes the recorder, which writes the last
// interval to the hdr log.
func (o *observability) close(ctx context.Context) error {
	var errs []error
	if err := o.admin.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := o.rec.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close latency recorder: %w", err))
	}
	return errors.Join(errs...)
}
