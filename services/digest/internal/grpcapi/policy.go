package grpcapi

import (
	digestv1 "github.com/paperroute/paperroute/api/gen/paperroute/digest/v1"
	"github.com/paperroute/paperroute/platform/auth"
)

// Policy is who may call each DigestService method. Every method is listed:
// the authorizer refuses any method missing here.
func Policy() auth.Policy {
	return auth.Policy{
		digestv1.DigestService_ImportPapers_FullMethodName: auth.Operator,
		digestv1.DigestService_ListPapers_FullMethodName:   auth.Operator,
		digestv1.DigestService_UpsertPapers_FullMethodName: auth.Operator,
		digestv1.DigestService_GetPaper_FullMethodName:     auth.Operator,
		digestv1.DigestService_DeletePaper_FullMethodName:  auth.Operator,
		digestv1.DigestService_RunDigest_FullMethodName:    auth.Operator,
		digestv1.DigestService_GetDigestRun_FullMethodName: auth.Operator,
		// Editions, ranking and previews.
		digestv1.DigestService_ListDigestRuns_FullMethodName: auth.Operator,
		// PUBLIC for preferences; the handler asks for the operator token
		// when the request names a subscriber.
		digestv1.DigestService_PreviewDigest_FullMethodName: auth.Public,
		digestv1.DigestService_ListTrending_FullMethodName:  auth.Public,
		digestv1.DigestService_ListTopics_FullMethodName:    auth.Public,
	}
}
