package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// kustomizeVersion is the kustomize that renders deploy/k8s; the Makefile's
// KUSTOMIZE_VERSION installs the same one into ./bin.
const kustomizeVersion = "v5.7.1"

// kustomize returns the command that runs kustomize: $KUSTOMIZE (set by the
// Makefile to ./bin/kustomize) after checking its version, else `go run` of
// the pinned version.
func kustomize(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	if bin := os.Getenv("KUSTOMIZE"); bin != "" {
		out, err := exec.Command(bin, "version").CombinedOutput()
		if err != nil {
			t.Fatalf("KUSTOMIZE=%s version: %v\n%s", bin, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != kustomizeVersion {
			t.Fatalf("KUSTOMIZE=%s is %s, want %s (make tools)", bin, got, kustomizeVersion)
		}
		return exec.Command(bin, args...)
	}
	return exec.Command("go", append([]string{"run", "sigs.k8s.io/kustomize/kustomize/v5@" + kustomizeVersion}, args...)...)
}

// object is one rendered Kubernetes object, decoded loosely.
type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec yaml.Node         `yaml:"spec"`
}

type envVar struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		SecretKeyRef *struct {
			Name     string `yaml:"name"`
			Key      string `yaml:"key"`
			Optional bool   `yaml:"optional"`
		} `yaml:"secretKeyRef"`
	} `yaml:"valueFrom"`
}

type probe struct {
	GRPC *struct {
		Port int `yaml:"port"`
	} `yaml:"grpc"`
	Exec *struct {
		Command []string `yaml:"command"`
	} `yaml:"exec"`
}

type deploymentSpec struct {
	Selector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	Template struct {
		Spec struct {
			SecurityContext struct {
				RunAsNonRoot bool `yaml:"runAsNonRoot"`
			} `yaml:"securityContext"`
			Containers []struct {
				Name  string `yaml:"name"`
				Ports []struct {
					Name          string `yaml:"name"`
					ContainerPort int    `yaml:"containerPort"`
				} `yaml:"ports"`
				Env     []envVar `yaml:"env"`
				EnvFrom []struct {
					ConfigMapRef *struct{ Name string } `yaml:"configMapRef"`
					SecretRef    *struct{ Name string } `yaml:"secretRef"`
				} `yaml:"envFrom"`
				VolumeMounts []struct {
					MountPath string `yaml:"mountPath"`
				} `yaml:"volumeMounts"`
				StartupProbe   *probe `yaml:"startupProbe"`
				ReadinessProbe *probe `yaml:"readinessProbe"`
				LivenessProbe  *probe `yaml:"livenessProbe"`
				Resources      struct {
					Requests map[string]string `yaml:"requests"`
					Limits   map[string]string `yaml:"limits"`
				} `yaml:"resources"`
			} `yaml:"containers"`
		} `yaml:"spec"`
	} `yaml:"template"`
}

// render builds one overlay and decodes every object.
func render(t *testing.T, overlay string) []object {
	t.Helper()
	cmd := kustomize(t, "build", overlay)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kustomize build %s: %v\n%s", overlay, err, stderr.String())
	}
	var objs []object
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var o object
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("kustomize build %s: output does not decode: %v", overlay, err)
		}
		objs = append(objs, o)
	}
	return objs
}

// TestKubernetesOverlays renders every overlay of deploy/k8s and checks
// what an operator relies on: each service's Deployment sets only variables
// its program reads and docs/configuration.md documents (directly or
// through ConfigMaps), takes secrets by explicit key, has gRPC readiness
// and liveness probes on its gRPC port, resource requests and a memory
// limit, runs as non-root, and has a Service, a PodDisruptionBudget and a
// NetworkPolicy; the sender has a HorizontalPodAutoscaler; Secrets are
// generated in dev only.
func TestKubernetesOverlays(t *testing.T) {
	overlays, err := filepath.Glob("k8s/overlays/*")
	if err != nil || len(overlays) < 2 {
		t.Fatalf("want the dev and production overlays under deploy/k8s/overlays, found %v (%v)", overlays, err)
	}
	reads, docs := programReads(t), documentedVars(t)
	for _, overlay := range overlays {
		env := filepath.Base(overlay)
		t.Run(env, func(t *testing.T) {
			objs := render(t, overlay)
			byKind := map[string]map[string]object{}
			for _, o := range objs {
				if byKind[o.Kind] == nil {
					byKind[o.Kind] = map[string]object{}
				}
				byKind[o.Kind][o.Metadata.Name] = o
			}
			for _, name := range []string{"subscriber", "digest", "sender"} {
				d, ok := byKind["Deployment"][name]
				if !ok {
					t.Errorf("%s: no Deployment %s", overlay, name)
					continue
				}
				checkDeployment(t, overlay, d, byKind, reads, docs)
				for _, kind := range []string{"Service", "PodDisruptionBudget", "NetworkPolicy"} {
					if _, ok := byKind[kind][name]; !ok {
						t.Errorf("%s: no %s %s", overlay, kind, name)
					}
				}
			}
			if _, ok := byKind["HorizontalPodAutoscaler"]["sender"]; !ok {
				t.Errorf("%s: no HorizontalPodAutoscaler for sender", overlay)
			}
			if env == "production" && len(byKind["Secret"]) > 0 {
				t.Errorf("%s renders Secrets %v: production secrets are created out of band, never committed", overlay, sortedKeys(byKind["Secret"]))
			}
		})
	}
}

func checkDeployment(t *testing.T, overlay string, d object, byKind map[string]map[string]object, reads map[string]map[string]bool, docs map[string]int) {
	t.Helper()
	var spec deploymentSpec
	if err := d.Spec.Decode(&spec); err != nil {
		t.Fatalf("%s: Deployment %s: %v", overlay, d.Metadata.Name, err)
	}
	if !spec.Template.Spec.SecurityContext.RunAsNonRoot {
		t.Errorf("%s: Deployment %s does not set runAsNonRoot", overlay, d.Metadata.Name)
	}
	for _, c := range spec.Template.Spec.Containers {
		where := overlay + ": Deployment " + d.Metadata.Name + " container " + c.Name
		var names []string
		for _, e := range c.Env {
			names = append(names, e.Name)
			if ref := e.ValueFrom; ref != nil && ref.SecretKeyRef != nil && !ref.SecretKeyRef.Optional && len(byKind["Secret"]) > 0 {
				if _, ok := byKind["Secret"][ref.SecretKeyRef.Name]; !ok {
					t.Errorf("%s: %s refers to Secret %s, which the overlay does not generate", where, e.Name, ref.SecretKeyRef.Name)
				}
			}
		}
		for _, from := range c.EnvFrom {
			switch {
			case from.SecretRef != nil:
				t.Errorf("%s: envFrom secretRef %s hides which variables it sets; use env with secretKeyRef", where, from.SecretRef.Name)
			case from.ConfigMapRef != nil:
				cm, ok := byKind["ConfigMap"][from.ConfigMapRef.Name]
				if !ok {
					t.Errorf("%s: envFrom ConfigMap %s is not in the rendered overlay", where, from.ConfigMapRef.Name)
					continue
				}
				names = append(names, sortedKeys(cm.Data)...)
			}
		}
		checkEnv(t, where, c.Name, names, reads, docs)

		grpcPort := 0
		for _, p := range c.Ports {
			if p.Name == "grpc" {
				grpcPort = p.ContainerPort
			}
		}
		// With TLS on the gRPC port the kubelet's grpc probe cannot
		// connect: the probes must be the image's healthcheck, which
		// speaks the service's TLS. TLS files must be on a mounted volume.
		tlsOn := false
		for _, e := range c.Env {
			if !strings.HasPrefix(e.Name, "PAPERROUTE_GRPC_TLS_") {
				continue
			}
			tlsOn = tlsOn || e.Name == "PAPERROUTE_GRPC_TLS_CERT"
			mounted := false
			for _, m := range c.VolumeMounts {
				mounted = mounted || strings.HasPrefix(e.Value, strings.TrimSuffix(m.MountPath, "/")+"/")
			}
			if !mounted {
				t.Errorf("%s: %s=%q is not on a mounted volume", where, e.Name, e.Value)
			}
		}
		healthcheck := []string{"/usr/local/bin/healthcheck", "grpc://127.0.0.1:" + strconv.Itoa(grpcPort)}
		for kind, p := range map[string]*probe{"startupProbe": c.StartupProbe, "readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe} {
			switch {
			case grpcPort == 0 || p == nil:
				t.Errorf("%s: no %s, or no port named grpc", where, kind)
			case tlsOn && (p.Exec == nil || !slices.Equal(p.Exec.Command, healthcheck)):
				t.Errorf("%s: gRPC serves TLS, so %s must run %q (the kubelet's grpc probe cannot speak TLS)", where, kind, healthcheck)
			case !tlsOn && (p.GRPC == nil || p.GRPC.Port != grpcPort):
				t.Errorf("%s: %s must be a grpc probe on the grpc port (%d)", where, kind, grpcPort)
			}
		}
		if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
			t.Errorf("%s: wants cpu and memory requests and a memory limit, has %+v", where, c.Resources)
		}
	}
}
