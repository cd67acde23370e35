// Command coredns is the upstream CoreDNS server with its default plugin set,
// built from the Go module proxy at the version pinned in ../versions.env.
// It is a thin wrapper so that the version in go.mod is what is built.
package main

import (
	_ "github.com/coredns/coredns/core/plugin"
	"github.com/coredns/coredns/coremain"
)

func main() {
	coremain.Run()
}
