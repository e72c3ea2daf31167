module github.com/paperroute/paperroute/deploy

go 1.26.10

require go.yaml.in/yaml/v3 v3.0.5
