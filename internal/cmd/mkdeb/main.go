// Command mkdeb builds cfguard's Debian package from a built binary, the
// systemd units and packaging/deb, with nfpm as a library. It lives in a
// module of its own so that nfpm and its many modules never reach
// cfguard's go.mod or binary (docs/packaging.md says why).
//
//	go run . -root ../../.. -bin ../../../dist/cfguard -out ../../../dist
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	var o options
	flag.StringVar(&o.root, "root", ".", "the cfguard source tree (systemd/, packaging/deb/)")
	flag.StringVar(&o.bin, "bin", "", "the cfguard binary to package (built for the package's architecture and runnable here)")
	flag.StringVar(&o.version, "version", "", "Debian version (default: from git describe in -root)")
	flag.StringVar(&o.out, "out", "dist", "directory the .deb is written to")
	flag.StringVar(&o.maintainer, "maintainer", "cfguard maintainers <maintainers@cfguard.invalid>", "Maintainer field")
	flag.Parse()
	if o.bin == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "mkdeb: usage: mkdeb -bin PATH [-root DIR] [-version V] [-out DIR]")
		os.Exit(2)
	}
	path, err := build(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkdeb: "+err.Error())
		os.Exit(1)
	}
	fmt.Println(filepath.Clean(path))
}
