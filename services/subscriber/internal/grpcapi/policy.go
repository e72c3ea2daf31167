package grpcapi

import (
	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/auth"
)

// Policy is who may call each RPC. A method missing here is refused by the
// auth interceptor, and a test checks that every method of the service
// descriptor is listed.
func Policy() auth.Policy {
	return auth.Policy{
		subscriberv1.SubscriberService_Subscribe_FullMethodName: auth.Public,
		// TOKEN: public at the auth layer; the service verifies the signed
		// link token in the request.
		subscriberv1.SubscriberService_ConfirmSubscription_FullMethodName:   auth.Public,
		subscriberv1.SubscriberService_Unsubscribe_FullMethodName:           auth.Public,
		subscriberv1.SubscriberService_GetSubscriber_FullMethodName:         auth.Operator | auth.Internal, // digest: an operator's preview by subscriber id
		subscriberv1.SubscriberService_ListSubscribers_FullMethodName:       auth.Operator | auth.Internal,
		subscriberv1.SubscriberService_ListDueSubscribers_FullMethodName:    auth.Internal,
		subscriberv1.SubscriberService_GetPreferences_FullMethodName:        auth.Public,
		subscriberv1.SubscriberService_UpdatePreferences_FullMethodName:     auth.Public,
		subscriberv1.SubscriberService_ExportSubscriber_FullMethodName:      auth.Operator,
		subscriberv1.SubscriberService_DeleteSubscriber_FullMethodName:      auth.Operator,
		subscriberv1.SubscriberService_Suppress_FullMethodName:              auth.Operator,
		subscriberv1.SubscriberService_Unsuppress_FullMethodName:            auth.Operator,
		subscriberv1.SubscriberService_RevokeLinks_FullMethodName:           auth.Operator,
		subscriberv1.SubscriberService_ImportSubscribers_FullMethodName:     auth.Operator,
		subscriberv1.SubscriberService_RecordDeliveryFailure_FullMethodName: auth.Internal,
	}
}
