package bench

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const validYAML = `
name: t
topics: 1
partitionsPerTopic: 4
messageSize: 1024
subscriptionsPerTopic: 1
producersPerTopic: 2
producerRate: 1000
testDurationMinutes: 1
`

func TestParseWorkloadDefaults(t *testing.T) {
	w, err := ParseWorkload([]byte(validYAML))
	if err != nil {
		t.Fatalf("ParseWorkload: %v", err)
	}
	if w.KeyDistributor != KeyNone || w.WarmupDurationMinutes != 1 || w.ConsumerPerSubscription != 1 || w.BacklogDrainRatio != 1 {
		t.Fatalf("defaults: got %+v", w)
	}
	if got, want := w.ProducerCount(), 2; got != want {
		t.Fatalf("ProducerCount = %d, want %d", got, want)
	}
}

// TestParseWorkloadErrors: every bad field is refused with a message naming it.
func TestParseWorkloadErrors(t *testing.T) {
	tests := []struct {
		name, replace, with, wantInErr string
	}{
		{"unknown key", "topics: 1", "topics: 1\nproducerRat: 5", "producerRat"},
		{"zero partitions", "partitionsPerTopic: 4", "partitionsPerTopic: 0", "partitionsPerTopic"},
		{"negative partitions", "partitionsPerTopic: 4", "partitionsPerTopic: -2", "partitionsPerTopic"},
		{"too many partitions", "partitionsPerTopic: 4", "partitionsPerTopic: 5000", "partitionsPerTopic"},
		{"zero topics", "topics: 1", "topics: 0", "topics"},
		{"negative rate", "producerRate: 1000", "producerRate: -1", "producerRate"},
		{"rate too high for the pacer", "producerRate: 1000", "producerRate: 2000000", "pacer"},
		{"fractional rate", "producerRate: 1000", "producerRate: 0.5", "producerRate"},
		{"message below the stamp", "messageSize: 1024", "messageSize: 8", "messageSize"},
		{"message too large", "messageSize: 1024", "messageSize: 5000000", "messageSize"},
		{"no producers", "producersPerTopic: 2", "producersPerTopic: 0", "producersPerTopic"},
		{"negative subscriptions", "subscriptionsPerTopic: 1", "subscriptionsPerTopic: -1", "subscriptionsPerTopic"},
		{"zero duration", "testDurationMinutes: 1", "testDurationMinutes: 0", "testDurationMinutes"},
		{"negative warmup", "testDurationMinutes: 1", "testDurationMinutes: 1\nwarmupDurationMinutes: -1", "warmupDurationMinutes"},
		{"bad key distributor", "topics: 1", "topics: 1\nkeyDistributor: RANDOM", "keyDistributor"},
		{"backlog with rate search", "producerRate: 1000", "producerRate: 0\nconsumerBacklogSizeGB: 1", "consumerBacklogSizeGB"},
		{"negative backlog", "topics: 1", "topics: 1\nconsumerBacklogSizeGB: -1", "consumerBacklogSizeGB"},
		{"bad random ratio", "topics: 1", "topics: 1\nrandomBytesRatio: 1.5", "randomBytesRatio"},
		{"bad flush type", "topics: 1", "topics: 1\nflushDiskType: SOMETIMES", "flushDiskType"},
		{"wrong type", "topics: 1", "topics: many", "many"},
		{"empty name", "name: t", "name: ''", "name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			y := strings.Replace(validYAML, tc.replace, tc.with, 1)
			if y == validYAML {
				t.Fatalf("BUG: replacement %q not found", tc.replace)
			}
			_, err := ParseWorkload([]byte(y))
			if err == nil {
				t.Fatalf("ParseWorkload accepted %q", tc.with)
			}
			if !errors.Is(err, ErrWorkload) || !strings.Contains(err.Error(), tc.wantInErr) {
				t.Fatalf("got error %q, want ErrWorkload naming %q", err, tc.wantInErr)
			}
		})
	}
}

// TestShippedWorkloads: every file in workloads/ parses, and the reference workload says
// what the project's goal is stated for.
func TestShippedWorkloads(t *testing.T) {
	files, err := filepath.Glob("workloads/*.yaml")
	if err != nil || len(files) < 5 {
		t.Fatalf("workloads: %v, %d files, want at least 5", err, len(files))
	}
	for _, f := range files {
		w, err := LoadWorkload(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if w.Name+".yaml" != filepath.Base(f) {
			t.Errorf("%s: name %q does not match the file", f, w.Name)
		}
	}
	ref, err := LoadWorkload("workloads/reference.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if ref.PartitionsPerTopic != 16 || ref.MessageSize != 1024 || ref.ProducersPerTopic != 8 ||
		ref.ProducerRate != 10000 || ref.TestDurationMinutes != 5 || ref.FlushDiskType != FlushSync {
		t.Fatalf("reference workload: got %+v", ref)
	}
}

func TestPayloadFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.bin"), make([]byte, 100), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := ParseWorkload([]byte(strings.Replace(validYAML, "messageSize: 1024", "messageSize: 100\npayloadFile: p.bin", 1)))
	if err != nil {
		t.Fatal(err)
	}
	w.Dir = dir
	if _, err := newPayloadPool(w, 1); err != nil {
		t.Fatalf("payload file of the right size: %v", err)
	}
	w.MessageSize = 200
	if _, err := newPayloadPool(w, 1); err == nil || !strings.Contains(err.Error(), "payloadFile") {
		t.Fatalf("payload file of the wrong size: got %v, want an error naming payloadFile", err)
	}
}
