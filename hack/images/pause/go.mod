module github.com/faultline-dev/faultline/hack/images/pause

go 1.26
