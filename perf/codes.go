package perf

// The request codes the recorder keeps apart. Everything else is counted under "other", so the
// table (and memory) never grows with what clients send. Values are RocketMQ's RequestCode.
const (
	CodeSendMessage        int16 = 10
	CodePullMessage        int16 = 11
	CodeQueryConsumerOfs   int16 = 14
	CodeUpdateConsumerOfs  int16 = 15
	CodeHeartBeat          int16 = 34
	CodeConsumerSendMsgBck int16 = 36
	CodeEndTransaction     int16 = 37
	CodeGetRouteInfo       int16 = 105
	CodeSendMessageV2      int16 = 310
	CodeSendBatchMessage   int16 = 320
)

// codeInfo describes one row of the code table.
type codeInfo struct {
	code int16
	name string
	// send marks durable sends: they make up the "sends" aggregate the SLO is stated for.
	send bool
	// slowLog is false for requests that are held on purpose (long-polling pulls), which would
	// otherwise fill the slow-request ring with waits nobody needs explained.
	slowLog bool
}

// numCodes is the number of rows in codeTable; "other" is the last.
const (
	numCodes  = len(codeTable)
	codeOther = numCodes - 1
)

// codeTable's rows are in codeIndex's order (TestCodeTable checks it).
var codeTable = [...]codeInfo{
	{CodeSendMessage, "SEND_MESSAGE", true, true},
	{CodeSendMessageV2, "SEND_MESSAGE_V2", true, true},
	{CodeSendBatchMessage, "SEND_BATCH_MESSAGE", true, true},
	{CodePullMessage, "PULL_MESSAGE", false, false},
	{CodeConsumerSendMsgBck, "CONSUMER_SEND_MSG_BACK", false, true},
	{CodeEndTransaction, "END_TRANSACTION", false, true},
	{CodeHeartBeat, "HEART_BEAT", false, true},
	{CodeQueryConsumerOfs, "QUERY_CONSUMER_OFFSET", false, true},
	{CodeUpdateConsumerOfs, "UPDATE_CONSUMER_OFFSET", false, true},
	{CodeGetRouteInfo, "GET_ROUTEINFO_BY_TOPIC", false, true},
	{-1, "other", false, true},
}

// codeIndex maps a request code to its row in codeTable. A switch compiles to a jump table or
// a short binary search: no map, no allocation.
func codeIndex(code int16) int {
	switch code {
	case CodeSendMessage:
		return 0
	case CodeSendMessageV2:
		return 1
	case CodeSendBatchMessage:
		return 2
	case CodePullMessage:
		return 3
	case CodeConsumerSendMsgBck:
		return 4
	case CodeEndTransaction:
		return 5
	case CodeHeartBeat:
		return 6
	case CodeQueryConsumerOfs:
		return 7
	case CodeUpdateConsumerOfs:
		return 8
	case CodeGetRouteInfo:
		return 9
	}
	return codeOther
}

// CodeName returns the name the recorder reports code under ("other" for codes outside its
// table).
func CodeName(code int16) string { return codeTable[codeIndex(code)].name }
