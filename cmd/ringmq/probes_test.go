package main

import (
	"reflect"
	"testing"
)

func TestProbesFromEnv(t *testing.T) {
	cases := []struct {
		in      string
		names   []string
		off     bool
		wantErr bool
	}{
		{in: "", names: nil},
		{in: "default", names: nil},
		{in: "off", off: true},
		{in: "none", off: true},
		{in: "all", names: []string{"block_io", "fsync", "io_uring", "page_fault", "runq_delay"}},
		{in: "fsync, runq_delay", names: []string{"fsync", "runq_delay"}},
		{in: ",", names: []string{}},
		{in: "fsync,kprobe", wantErr: true},
	}
	for _, c := range cases {
		names, off, err := probesFromEnv(c.in)
		if (err != nil) != c.wantErr || off != c.off || !reflect.DeepEqual(names, c.names) {
			t.Errorf("probesFromEnv(%q): got %q, %v, %v; want %q, %v, error %v", c.in, names, off, err, c.names, c.off, c.wantErr)
		}
	}
}
