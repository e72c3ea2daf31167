package listener_test

import (
	"net"
	"testing"

	"github.com/paperroute/paperroute/platform/listener"
)

func TestOpenAdoptsAGivenListener(t *testing.T) {
	given, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer given.Close()
	got, err := listener.Open(given, "256.0.0.1:1") // addr is ignored
	if err != nil || got != given {
		t.Fatalf("Open(given) = %v, %v; want the given listener", got, err)
	}
}

func TestOpenListensAndClose(t *testing.T) {
	l, err := listener.Open(nil, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listener.Close(l, nil)
	if c, err := net.Dial("tcp", l.Addr().String()); err == nil {
		c.Close()
		t.Error("listener still accepts after Close")
	}
	if _, err := listener.Open(nil, "not-an-address"); err == nil {
		t.Error("Open of a bad address succeeded")
	}
}
