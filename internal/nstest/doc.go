// Package nstest gives tests throwaway network namespaces: made with
// `ip netns add`, joined by veth pairs, and deleted (with every process the
// test started in them) when the test ends. Nothing it does touches the
// host's own namespace, addresses or ruleset.
package nstest
