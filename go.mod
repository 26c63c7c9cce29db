module github.com/ringmq/ringmq

go 1.26.8

require (
	github.com/HdrHistogram/hdrhistogram-go v1.1.2
	github.com/cilium/ebpf v0.20.0
	github.com/prometheus/common v0.67.4
	github.com/stretchr/testify v1.11.1
	github.com/valyala/fasthttp v1.68.0
	golang.org/x/sys v0.38.0
)
