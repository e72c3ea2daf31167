package grpcapi_test

import (
	"testing"

	digestv1 "github.com/paperroute/paperroute/api/gen/paperroute/digest/v1"
	"github.com/paperroute/paperroute/platform/auth"

	"github.com/paperroute/paperroute/services/digest/internal/grpcapi"
)

// TestPolicyCoversEveryMethod checks that every DigestService method has a
// policy entry (the authorizer refuses unlisted methods, so a missing entry
// would make a new RPC uncallable) and that the policy names no method the
// service lacks.
func TestPolicyCoversEveryMethod(t *testing.T) {
	policy := grpcapi.Policy()
	desc := digestv1.DigestService_ServiceDesc
	methods := map[string]bool{}
	for _, m := range desc.Methods {
		name := "/" + desc.ServiceName + "/" + m.MethodName
		methods[name] = true
		class, ok := policy[name]
		if !ok {
			t.Errorf("%s has no policy entry", name)
			continue
		}
		want := auth.Operator
		switch m.MethodName {
		case "PreviewDigest", "ListTrending", "ListTopics":
			want = auth.Public
		}
		if class != want {
			t.Errorf("%s is class %v, want %v (digest.proto)", name, class, want)
		}
	}
	for _, s := range desc.Streams {
		t.Errorf("unexpected stream %s: give it a policy entry and a test", s.StreamName)
	}
	for name := range policy {
		if !methods[name] {
			t.Errorf("policy names %s, which DigestService does not have", name)
		}
	}
}
