package grpcapi

import (
	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	"github.com/paperroute/paperroute/platform/auth"
)

// Policy is who may call each RPC of the sender service. Every method of
// SenderService must be listed: an unlisted method is refused.
func Policy() auth.Policy {
	return auth.Policy{
		senderv1.SenderService_PutContent_FullMethodName:       auth.Internal,
		senderv1.SenderService_Enqueue_FullMethodName:          auth.Internal,
		senderv1.SenderService_GetMessage_FullMethodName:       auth.Operator | auth.Internal,
		senderv1.SenderService_GetQueueStats_FullMethodName:    auth.Operator,
		senderv1.SenderService_ListMessages_FullMethodName:     auth.Operator,
		senderv1.SenderService_CancelRecipient_FullMethodName:  auth.Operator | auth.Internal,
		senderv1.SenderService_PauseSending_FullMethodName:     auth.Operator,
		senderv1.SenderService_ResumeSending_FullMethodName:    auth.Operator,
		senderv1.SenderService_RetryDeadLetters_FullMethodName: auth.Operator,
	}
}
