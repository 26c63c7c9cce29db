package engine

import (
	"errors"
	"fmt"

	"github.com/ringmq/ringmq/engine/consumequeue"
	"github.com/ringmq/ringmq/engine/record"
)

type reqKind uint8

const (
	reqDeleteTopic reqKind = iota
	reqRetention
)

// dispatchReq is work for the dispatcher goroutine besides dispatching.
type dispatchReq struct {
	kind    reqKind
	topic   string
	physMin int64
	done    chan error // nil: nobody waits
}

// dispatcher is the state of the dispatcher goroutine (and of Open's replay).
type dispatcher struct {
	s          *Store
	dispatched int64 // records below are dispatched
	target     int64 // this round stops here
	indexFrom  int64 // records below are already in the index (recovery)
	records    int64 // dispatched this round
	queues     map[string]map[int32]*consumequeue.Queue
	touched    map[*consumequeue.Queue]struct{}
	touchedL   []*consumequeue.Queue
	scanFn     func(int64, []byte) bool
	stopped    bool  // the round's callback stopped the scan
	err        error // the first failure of this round
	failing    bool  // the last round failed (logged once per streak)
}

func (d *dispatcher) init(s *Store) {
	d.s = s
	d.queues = make(map[string]map[int32]*consumequeue.Queue)
	d.touched = make(map[*consumequeue.Queue]struct{})
	d.scanFn = d.onRecord
}

func (s *Store) dispatchLoop() {
	defer s.bg.Done()
	d := &s.d
	for {
		select {
		case <-s.stopCh:
			return
		case req := <-s.reqCh:
			err := d.handle(req)
			if req.done != nil {
				req.done <- err
			} else if err != nil {
				s.cfg.Logger.Error("engine: dispatcher request failed", "err", err)
			}
			continue
		case <-s.kickCh:
		}
		if _, err := d.dispatchTo(s.visibleTarget.Load()); err != nil {
			// Retried at the next kick or checkpoint tick: what was not written stays
			// buffered (consume queues, index) or is read again from the log.
			msg := err.Error()
			s.dispatchFailed.Store(&msg)
			if !d.failing {
				s.cfg.Logger.Error("engine: dispatch failed; consumers see no new messages until it succeeds", "at", d.dispatched, "err", err)
			}
			d.failing = true
		} else if d.failing {
			d.failing = false
			s.dispatchFailed.Store(nil)
			s.cfg.Logger.Info("engine: dispatch recovered", "at", d.dispatched)
		}
	}
}

func (d *dispatcher) handle(req dispatchReq) error {
	switch req.kind {
	case reqDeleteTopic:
		s := d.s
		s.offMu.Lock()
		c := s.deleteCuts[req.topic]
		del := c != nil && !c.queuesDeleted // nil: the cut was reached and the queues went then
		if del {
			c.queuesDeleted = true
		}
		s.offMu.Unlock()
		if !del {
			return nil
		}
		return d.deleteQueues(req.topic)
	case reqRetention:
		return d.s.retention(req.physMin)
	}
	panic(fmt.Sprintf("BUG: engine: dispatcher request kind %d", req.kind))
}

// dispatchTo dispatches records from d.dispatched up to target (at most
// maxDispatchRecordsPerRound of them), writes the queues and index, publishes and
// tells the listener. It returns the records dispatched.
func (d *dispatcher) dispatchTo(target int64) (int64, error) {
	var total int64
	for d.dispatched < target {
		d.target, d.records, d.err, d.stopped = target, 0, nil, false
		written := d.s.log.WrittenOffset() // Scan reads at least this far
		err := d.s.log.Scan(d.dispatched, d.scanFn)
		if err == nil {
			err = d.err
		}
		if err == nil && !d.stopped {
			// Scan passed every record below written: what lies between the last
			// record and there is a blank segment tail.
			d.dispatched = max(d.dispatched, min(written, target))
		}
		if cerr := d.commit(); err == nil {
			err = cerr
		}
		total += d.records
		if err != nil {
			return total, err
		}
		if d.records == 0 && d.stopped {
			break // nothing readable past d.dispatched yet
		}
		if d.records == 0 && d.dispatched < target && d.s.log.WrittenOffset() <= d.dispatched {
			break
		}
	}
	return total, nil
}

// onRecord dispatches one record (the commit log's Scan callback).
func (d *dispatcher) onRecord(phys int64, rec []byte) bool {
	// Records come in order and every earlier one was dispatched: bytes between the
	// last one's end and phys are a blank segment tail.
	d.dispatched = max(d.dispatched, min(phys, d.target))
	if phys >= d.target || d.records == maxDispatchRecordsPerRound {
		d.stopped = true
		return false
	}
	v, err := record.Decode(rec)
	if err != nil {
		d.err = fmt.Errorf("dispatch record at %d: %w", phys, err)
		return false
	}
	topic, props, sysFlag := v.Topic(), v.Properties(), v.SysFlag()
	if !isTxHalfOrRollback(sysFlag) && !d.beforeDeleteCut(topic, phys) {
		q := d.queue(topic, v.QueueID())
		e := consumequeue.Entry{PhysicalOffset: phys, SizeBytes: v.TotalSize(), TagsCode: d.s.tagsCode(topic, props, v.StoreTimestampMs())}
		if err := q.Put(v.QueueOffset(), e); err != nil {
			d.err = fmt.Errorf("dispatch record at %d: %w", phys, err)
			d.stopped = true
			return false
		}
		if _, ok := d.touched[q]; !ok {
			d.touched[q] = struct{}{}
			d.touchedL = append(d.touchedL, q)
		}
	}
	if phys >= d.indexFrom && sysFlag&record.SysFlagTxMask != record.SysFlagTxRollback {
		if err := d.index(topic, props, phys, v.StoreTimestampMs()); err != nil {
			d.err = fmt.Errorf("index record at %d: %w", phys, err)
			d.stopped = true
			return false
		}
	}
	d.dispatched = phys + int64(len(rec))
	d.records++
	return true
}

func (d *dispatcher) index(topic, props []byte, phys, tsMs int64) error {
	if uniq, ok := record.Property(props, record.PropUniqKey); ok && len(uniq) > 0 {
		if err := d.s.idx.Add(topic, uniq, phys, tsMs); err != nil {
			return err
		}
	}
	keys, _ := record.Property(props, record.PropKeys)
	for {
		tok, rest, ok := record.NextKey(keys)
		if !ok {
			return nil
		}
		if err := d.s.idx.Add(topic, tok, phys, tsMs); err != nil {
			return err
		}
		keys = rest
	}
}

// queue returns the consume queue of topic/queueID, creating it on first use; the
// lookup does not allocate.
func (d *dispatcher) queue(topic []byte, queueID int32) *consumequeue.Queue {
	byID := d.queues[string(topic)]
	if q := byID[queueID]; q != nil {
		return q
	}
	if byID == nil {
		byID = make(map[int32]*consumequeue.Queue)
		d.queues[string(topic)] = byID
	}
	q := d.s.cqs.GetOrCreate(string(topic), queueID)
	byID[queueID] = q
	return q
}

// commit writes the touched queues and the index, publishes the dispatched offset and
// calls the arrival listener.
func (d *dispatcher) commit() error {
	var err error
	for _, q := range d.touchedL {
		err = errors.Join(err, q.Commit())
	}
	err = errors.Join(err, d.s.idx.Flush())
	if err != nil {
		return err
	}
	d.s.dispatchedA.Store(d.dispatched)
	if fn := d.s.listener.Load(); fn != nil {
		for _, q := range d.touchedL {
			(*fn)(q.Topic(), q.QueueID(), q.MaxOffset())
		}
	}
	clear(d.touched)
	clear(d.touchedL)
	d.touchedL = d.touchedL[:0]
	return nil
}

// tagsCode is the consume-queue tags code: the TAGS hash, or for ScheduleTopic the
// delivery time (store time + the DELAY level's delay, the level clamped to the table).
func (s *Store) tagsCode(topic, props []byte, storeTsMs int64) int64 {
	if string(topic) == ScheduleTopic {
		if lv, ok := record.Property(props, record.PropDelay); ok {
			if level := atoi(lv); level > 0 && len(s.cfg.DelayLevels) > 0 {
				level = min(level, len(s.cfg.DelayLevels))
				return storeTsMs + s.cfg.DelayLevels[level-1].Milliseconds()
			}
		}
		return storeTsMs
	}
	return record.TagsCode(props)
}

// atoi parses a small non-negative decimal; -1 when b is not one.
func atoi(b []byte) int {
	if len(b) == 0 || len(b) > 9 {
		return -1
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// deleteCut is a DeleteTopic in progress: phys is the commit-log offset of the topic's
// first record appended after the call (MaxInt64 until there is one). The dispatcher
// gives the topic's earlier records no consume-queue entry (they would re-create the
// queue at old offsets); the queues are deleted by the request or, if the dispatcher
// reaches phys first, right then, so that later records land in fresh queues.
type deleteCut struct {
	phys          int64
	queuesDeleted bool
}

func (d *dispatcher) deleteQueues(topic string) error {
	delete(d.queues, topic)
	return d.s.cqs.DeleteTopic(topic)
}

// beforeDeleteCut reports whether the record at phys of topic was appended before a
// pending DeleteTopic of it; reaching the cut ends the deletion.
func (d *dispatcher) beforeDeleteCut(topic []byte, phys int64) bool {
	s := d.s
	if s.deleteCutsN.Load() == 0 {
		return false
	}
	s.offMu.Lock()
	c := s.deleteCuts[string(topic)]
	if c == nil {
		s.offMu.Unlock()
		return false
	}
	if phys < c.phys {
		s.offMu.Unlock()
		return true
	}
	del := !c.queuesDeleted
	delete(s.deleteCuts, string(topic))
	s.deleteCutsN.Add(-1)
	s.offMu.Unlock()
	if del {
		if err := d.deleteQueues(string(topic)); err != nil {
			d.s.cfg.Logger.Error("engine: delete topic queues", "topic", string(topic), "err", err)
		}
	}
	return false
}
