module github.com/switchyard-dev/switchyard/loadtest

go 1.26.0

replace github.com/switchyard-dev/switchyard/sdk => ../sdk
