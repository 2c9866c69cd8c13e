module lotterycentral.example/lottery

go 1.26.0

require (
	github.com/caarlos0/env/v11 v11.4.2
	github.com/sirupsen/logrus v1.10.2
	github.com/stretchr/testify v1.12.1
	go.uber.org/goleak v1.3.0
	lotterycentral.example/protocol v0.0.0
)

require (
	github.com/klauspost/cpuid/v2 v2.0.12 // indirect
	github.com/zeebo/blake3 v0.2.4 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/sys v0.48.0 // indirect
)

// The sibling module is resolved locally, with or without go.work.
replace lotterycentral.example/protocol => ../protocol
