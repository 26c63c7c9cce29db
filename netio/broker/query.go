package broker

import (
	"fmt"

	"github.com/ringmq/ringmq/engine/record"
	"github.com/ringmq/ringmq/netio/remoting"
)

// MaxQueryMessages bounds the records one QUERY_MESSAGE answers with.
const MaxQueryMessages = 64

// handleViewMessage serves VIEW_MESSAGE_BY_ID (33): the record at a commit-log offset, given
// as `offset` (what Java's admin sends, decoded from the offset msg id) or as `msgId` (the
// 32-hex offset msg id itself).
func (b *Broker) handleViewMessage(c *remoting.Conn, req *remoting.Command) {
	offset, err := extInt64(req, "offset", -1)
	if err == nil && offset < 0 {
		if id := req.ExtString("msgId"); id != "" {
			_, offset, err = record.ParseOffsetMsgID(id)
		}
	}
	if err != nil || offset < 0 {
		b.replyError(c, req, remoting.RespSystemError, fmt.Sprintf("bad view message request: offset or msgId required (%v)", err))
		return
	}
	rec, release, err := b.store.ReadRecord(offset)
	if err != nil {
		b.replyError(c, req, remoting.RespSystemError, fmt.Sprintf("no message at commit log offset %d: %v", offset, err))
		return
	}
	r := c.NewResponse()
	r.Code = remoting.RespSuccess
	r.Body = append(r.Body, rec)
	r.OnWritten(release)
	c.Reply(req, r)
}

// handleQueryMessage serves QUERY_MESSAGE (12): the records of topic whose KEYS or UNIQ_KEY
// hold key, stored between beginTimestamp and endTimestamp, at most maxNum of them.
func (b *Broker) handleQueryMessage(c *remoting.Conn, req *remoting.Command) {
	topic, key := req.ExtString("topic"), req.ExtString("key")
	maxNum, err1 := extInt64(req, "maxNum", 32)
	beginMs, err2 := extInt64(req, "beginTimestamp", 0)
	endMs, err3 := extInt64(req, "endTimestamp", 1<<62)
	if topic == "" || key == "" || err1 != nil || err2 != nil || err3 != nil {
		b.replyError(c, req, remoting.RespSystemError, "bad query message request: topic, key and numeric maxNum/beginTimestamp/endTimestamp required")
		return
	}
	maxNum = min(max(maxNum, 1), MaxQueryMessages)
	offsets, err := b.store.QueryByKey(topic, key, int(maxNum), beginMs, endMs)
	if err != nil {
		b.replyError(c, req, remoting.RespSystemError, "query by key: "+err.Error())
		return
	}
	r := c.NewResponse()
	var releases []func()
	var lastPhy int64
	for _, off := range offsets {
		rec, release, err := b.store.ReadRecord(off)
		if err != nil {
			continue // deleted since it was indexed
		}
		r.Body = append(r.Body, rec)
		releases = append(releases, release)
		lastPhy = max(lastPhy, off)
	}
	if len(releases) == 0 {
		r.Code = remoting.RespQueryNotFound
		r.SetRemark("can not find message, maybe time range not correct")
	} else {
		r.Code = remoting.RespSuccess
		r.AddExtInt("indexLastUpdatePhyoffset", lastPhy)
		r.AddExtInt("indexLastUpdateTimestamp", endMs)
		r.OnWritten(func() {
			for _, rel := range releases {
				rel()
			}
		})
	}
	c.Reply(req, r)
}
