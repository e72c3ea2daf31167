module github.com/paperroute/paperroute/deploy

go 1.26.10
