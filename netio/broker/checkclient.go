package broker

import (
	"encoding/json"

	"github.com/ringmq/ringmq/netio/remoting"
)

// checkClientBody is CHECK_CLIENT_CONFIG's body, Java's CheckClientRequestBody:
//
//	{"clientId":"192.0.2.2@14730","group":"g1",
//	 "subscriptionData":{"topic":"T1","subString":"a > 1","expressionType":"SQL92",
//	                     "tagsSet":[],"codeSet":[],"subVersion":1795238132512508397,"classFilterMode":false}}
//
// The request has no ext fields in Java; clientId and group are also read from ext fields
// of those names when the body lacks them.
type checkClientBody struct {
	ClientID         string            `json:"clientId"`
	Group            string            `json:"group"`
	SubscriptionData *subscriptionData `json:"subscriptionData"`
}

// handleCheckClientConfig serves CHECK_CLIENT_CONFIG (46), which the Java consumer sends at
// start (its start fails unless the answer is SUCCESS; the Go client v2.1.2 never sends
// it). The subscription is compiled as a heartbeat would compile it: SUCCESS if it
// compiles, else SUBSCRIPTION_PARSE_FAILED (23) with a remark naming the group, the topic
// and the error (with the position for SQL92). A body without subscriptionData has
// nothing to check and is answered SUCCESS, as Java does; a body that is not JSON is
// SYSTEM_ERROR. Nothing is registered.
func (b *Broker) handleCheckClientConfig(c *remoting.Conn, req *remoting.Command) {
	var body checkClientBody
	if len(req.Body) > 0 {
		if err := json.Unmarshal(req.Body, &body); err != nil {
			b.replyError(c, req, remoting.RespSystemError, "bad CHECK_CLIENT_CONFIG body: "+err.Error())
			return
		}
	}
	if body.ClientID == "" {
		body.ClientID = req.ExtString("clientId")
	}
	if body.Group == "" {
		body.Group = req.ExtString("group")
	}
	sd := body.SubscriptionData
	if sd == nil {
		b.replyOK(c, req)
		return
	}
	if _, err := compileSubscription(sd.ExpressionType, sd.SubString); err != nil {
		r := refusal{group: body.Group, topic: sd.Topic, expressionType: sd.ExpressionType, expression: sd.SubString, err: err}
		b.log.Warn("client config check: subscription refused", "group", r.group, "topic", r.topic,
			"expressionType", r.expressionType, "expression", r.expression, "client", body.ClientID, "err", err)
		b.replyError(c, req, remoting.RespSubscriptionParseFailed, r.String())
		return
	}
	b.replyOK(c, req)
}
