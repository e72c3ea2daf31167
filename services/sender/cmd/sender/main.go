// Command sender runs the sender service: it queues mail in Redis Streams
// and delivers it over SMTP. Configuration comes from the environment (see
// docs/configuration.md); the process stops gracefully on SIGINT or SIGTERM.
package main

import (
	"os"
	_ "time/tzdata" // subscribers' time zones load on any machine

	"github.com/paperroute/paperroute/platform/service"
	"github.com/paperroute/paperroute/services/sender/senderd"
)

func main() { os.Exit(service.Main("sender", senderd.Run)) }
