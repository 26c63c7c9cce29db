package remoting

// Request codes (RocketMQ RequestCode). The Go client v2.1.2 sends the ones PROTOCOL.md §2 lists;
// the rest are served to tools (ringmqctl, the Java admin) or sent broker -> namesrv / broker -> client.
const (
	ReqSendMessage                   int16 = 10
	ReqPullMessage                   int16 = 11
	ReqQueryMessage                  int16 = 12
	ReqQueryConsumerOffset           int16 = 14
	ReqUpdateConsumerOffset          int16 = 15
	ReqUpdateAndCreateTopic          int16 = 17
	ReqGetAllTopicConfig             int16 = 21
	ReqSearchOffsetByTimestamp       int16 = 29
	ReqGetMaxOffset                  int16 = 30
	ReqGetMinOffset                  int16 = 31
	ReqGetEarliestMsgStoreTime       int16 = 32
	ReqViewMessageByID               int16 = 33
	ReqHeartBeat                     int16 = 34
	ReqUnregisterClient              int16 = 35
	ReqConsumerSendMsgBack           int16 = 36
	ReqEndTransaction                int16 = 37
	ReqGetConsumerListByGroup        int16 = 38
	ReqCheckTransactionState         int16 = 39 // broker -> client, oneway
	ReqNotifyConsumerIDsChanged      int16 = 40 // broker -> client, oneway
	ReqLockBatchMQ                   int16 = 41
	ReqUnlockBatchMQ                 int16 = 42
	ReqCheckClientConfig             int16 = 46
	ReqRegisterBroker                int16 = 103
	ReqUnregisterBroker              int16 = 104
	ReqGetRouteInfoByTopic           int16 = 105
	ReqGetBrokerClusterInfo          int16 = 106
	ReqGetAllSubscriptionGroupConfig int16 = 201
	ReqGetTopicStatsInfo             int16 = 202
	ReqGetConsumerConnectionList     int16 = 203
	ReqGetAllTopicListFromNameServer int16 = 206
	ReqDeleteSubscriptionGroup       int16 = 207
	ReqGetConsumeStats               int16 = 208
	ReqDeleteTopicInBroker           int16 = 215
	ReqDeleteTopicInNamesrv          int16 = 216
	ReqResetConsumerClientOffset     int16 = 220 // broker -> client
	ReqGetConsumerStatusFromClient   int16 = 221 // broker -> client
	ReqGetTopicsByCluster            int16 = 224
	ReqGetConsumerRunningInfo        int16 = 307 // broker -> client
	ReqConsumeMessageDirectly        int16 = 309 // broker -> client
	ReqSendMessageV2                 int16 = 310
	ReqSendBatchMessage              int16 = 320
	ReqQueryDataVersion              int16 = 322
	ReqSendReplyMessage              int16 = 324
	ReqSendReplyMessageV2            int16 = 325
	ReqPushReplyMessageToClient      int16 = 326 // broker -> client
)

// Response codes (RocketMQ ResponseCode / RemotingSysResponseCode).
const (
	RespSuccess                   int16 = 0
	RespSystemError               int16 = 1
	RespSystemBusy                int16 = 2
	RespRequestCodeNotSupported   int16 = 3
	RespTransactionFailed         int16 = 4
	RespFlushDiskTimeout          int16 = 10
	RespSlaveNotAvailable         int16 = 11
	RespFlushSlaveTimeout         int16 = 12
	RespMessageIllegal            int16 = 13
	RespServiceNotAvailable       int16 = 14
	RespVersionNotSupported       int16 = 15
	RespNoPermission              int16 = 16
	RespTopicNotExist             int16 = 17
	RespTopicExistAlready         int16 = 18
	RespPullNotFound              int16 = 19
	RespPullRetryImmediately      int16 = 20
	RespPullOffsetMoved           int16 = 21
	RespQueryNotFound             int16 = 22
	RespSubscriptionParseFailed   int16 = 23
	RespSubscriptionNotExist      int16 = 24
	RespSubscriptionNotLatest     int16 = 25
	RespSubscriptionGroupNotExist int16 = 26
)

// requestNames names the request codes for logs and per-code metrics labels.
var requestNames = map[int16]string{
	ReqSendMessage: "SEND_MESSAGE", ReqPullMessage: "PULL_MESSAGE", ReqQueryMessage: "QUERY_MESSAGE",
	ReqQueryConsumerOffset: "QUERY_CONSUMER_OFFSET", ReqUpdateConsumerOffset: "UPDATE_CONSUMER_OFFSET",
	ReqUpdateAndCreateTopic: "UPDATE_AND_CREATE_TOPIC", ReqGetAllTopicConfig: "GET_ALL_TOPIC_CONFIG",
	ReqSearchOffsetByTimestamp: "SEARCH_OFFSET_BY_TIMESTAMP", ReqGetMaxOffset: "GET_MAX_OFFSET",
	ReqGetMinOffset: "GET_MIN_OFFSET", ReqGetEarliestMsgStoreTime: "GET_EARLIEST_MSG_STORETIME",
	ReqViewMessageByID: "VIEW_MESSAGE_BY_ID", ReqHeartBeat: "HEART_BEAT", ReqUnregisterClient: "UNREGISTER_CLIENT",
	ReqConsumerSendMsgBack: "CONSUMER_SEND_MSG_BACK", ReqEndTransaction: "END_TRANSACTION",
	ReqGetConsumerListByGroup: "GET_CONSUMER_LIST_BY_GROUP", ReqCheckTransactionState: "CHECK_TRANSACTION_STATE",
	ReqNotifyConsumerIDsChanged: "NOTIFY_CONSUMER_IDS_CHANGED", ReqLockBatchMQ: "LOCK_BATCH_MQ",
	ReqUnlockBatchMQ: "UNLOCK_BATCH_MQ", ReqCheckClientConfig: "CHECK_CLIENT_CONFIG",
	ReqRegisterBroker: "REGISTER_BROKER", ReqUnregisterBroker: "UNREGISTER_BROKER",
	ReqGetRouteInfoByTopic: "GET_ROUTEINFO_BY_TOPIC", ReqGetBrokerClusterInfo: "GET_BROKER_CLUSTER_INFO",
	ReqGetAllSubscriptionGroupConfig: "GET_ALL_SUBSCRIPTIONGROUP_CONFIG", ReqGetTopicStatsInfo: "GET_TOPIC_STATS_INFO",
	ReqGetConsumerConnectionList:     "GET_CONSUMER_CONNECTION_LIST",
	ReqGetAllTopicListFromNameServer: "GET_ALL_TOPIC_LIST_FROM_NAMESERVER",
	ReqDeleteSubscriptionGroup:       "DELETE_SUBSCRIPTIONGROUP", ReqGetConsumeStats: "GET_CONSUME_STATS",
	ReqDeleteTopicInBroker: "DELETE_TOPIC_IN_BROKER", ReqDeleteTopicInNamesrv: "DELETE_TOPIC_IN_NAMESRV",
	ReqResetConsumerClientOffset:   "RESET_CONSUMER_CLIENT_OFFSET",
	ReqGetConsumerStatusFromClient: "GET_CONSUMER_STATUS_FROM_CLIENT", ReqGetTopicsByCluster: "GET_TOPICS_BY_CLUSTER",
	ReqGetConsumerRunningInfo: "GET_CONSUMER_RUNNING_INFO", ReqConsumeMessageDirectly: "CONSUME_MESSAGE_DIRECTLY",
	ReqSendMessageV2: "SEND_MESSAGE_V2", ReqSendBatchMessage: "SEND_BATCH_MESSAGE",
	ReqQueryDataVersion: "QUERY_DATA_VERSION", ReqSendReplyMessage: "SEND_REPLY_MESSAGE",
	ReqSendReplyMessageV2: "SEND_REPLY_MESSAGE_V2", ReqPushReplyMessageToClient: "PUSH_REPLY_MESSAGE_TO_CLIENT",
}

// RequestName returns the RocketMQ name of a request code, or "UNKNOWN" (never allocates).
func RequestName(code int16) string {
	if n, ok := requestNames[code]; ok {
		return n
	}
	return "UNKNOWN"
}
