package grpcapi

import (
	"errors"
	"io"

	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/validation"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// maxImportChunk bounds one ImportSubscribersRequest's data.
const maxImportChunk = 1 << 20

// ImportSubscribers implements subscriberv1.SubscriberServiceServer: the
// streamed chunks are piped into subscription.Service.Import as they come.
func (s *Server) ImportSubscribers(stream subscriberv1.SubscriberService_ImportSubscribersServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return toStatus(validation.Field("data", "is empty: send the file"))
	}
	if err != nil {
		return err
	}
	req := subscription.ImportRequest{
		Source:                    first.GetSource(),
		DefaultConsentTextVersion: first.GetDefaultConsentTextVersion(),
		DryRun:                    first.GetDryRun(),
	}
	switch first.GetFormat() {
	case subscriberv1.ImportFormat_IMPORT_FORMAT_CSV:
		req.Format = subscription.ImportCSV
	case subscriberv1.ImportFormat_IMPORT_FORMAT_JSON_LINES:
		req.Format = subscription.ImportJSONLines
	}
	pr, pw := io.Pipe()
	go func() {
		msg := first
		var err error
		for {
			if len(msg.GetData()) > maxImportChunk {
				_ = pw.CloseWithError(validation.Field("data", "must be at most 1 MiB per message"))
				return
			}
			if _, err := pw.Write(msg.GetData()); err != nil {
				return // the reader stopped
			}
			msg, err = stream.Recv()
			if errors.Is(err, io.EOF) {
				_ = pw.Close()
				return
			}
			if err != nil {
				_ = pw.CloseWithError(err)
				return
			}
		}
	}()
	rep, err := s.svc.Import(ctx, pr, req)
	_ = pr.CloseWithError(io.ErrClosedPipe) // unblock the receiver if Import stopped early
	if err != nil {
		return toStatus(err)
	}
	out := &subscriberv1.ImportSubscribersResponse{
		Rows: rep.Rows, ImportedActive: rep.ImportedActive, Invited: rep.Invited, Existing: rep.Existing, Rejected: rep.Rejected,
	}
	for _, e := range rep.Errors {
		out.Errors = append(out.Errors, &subscriberv1.ImportRowError{Line: e.Line, Field: e.Field, Reason: e.Reason})
	}
	return stream.SendAndClose(out)
}
