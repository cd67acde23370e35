// Command etcd is the upstream etcd server, built from the Go module proxy.
// It is a thin wrapper so that the version pinned in go.mod is what is built.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
