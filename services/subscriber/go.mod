module github.com/paperroute/paperroute/services/subscriber

go 1.26.10

toolchain go1.26.10

require (
	github.com/paperroute/paperroute/api v0.0.0
	github.com/paperroute/paperroute/platform v0.0.0
)

replace (
	github.com/paperroute/paperroute/api => ../../api
	github.com/paperroute/paperroute/platform => ../../platform
)
