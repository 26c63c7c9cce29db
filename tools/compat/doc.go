// Package compat is ringmq's acceptance test: the unmodified official RocketMQ Go client
// (github.com/apache/rocketmq-client-go/v2 v2.1.2) against `ringmq namesrv` and
// `ringmq broker` running as real processes. It is its own Go module so the product
// module never depends on the client. docs/compat.md describes the scenarios.
package compat
