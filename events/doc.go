// Package events starts scans when sellers upload objects: it consumes the
// bucket notifications MinIO pushes to a Redis list and submits one scan per
// uploaded object, exactly as POST /v1/scans would (Submitter). It also
// writes the verdict back onto the object as a tag (TagVerdict), so that a
// bucket policy can refuse downloads of anything not scanned clean.
//
// # Where events come from
//
// MinIO's Redis notification target, in access format, RPUSHes every event
// to one list as a JSON array of one element:
//
//	[{"Event":[<S3 event record>],"EventTime":"2026-11-27T11:50:34.619Z"}]
//
// Enable it on the MinIO server (ID is any name; the ARN uses it):
//
//	MINIO_NOTIFY_REDIS_ENABLE_ASSETSCAN=on
//	MINIO_NOTIFY_REDIS_ADDRESS_ASSETSCAN=redis:6379
//	MINIO_NOTIFY_REDIS_KEY_ASSETSCAN=assetscan:events
//	MINIO_NOTIFY_REDIS_FORMAT_ASSETSCAN=access
//
// and subscribe the upload bucket with SetBucketNotification (or
// `mc event add`) to s3:ObjectCreated:* on ARN arn:minio:sqs::ASSETSCAN:redis,
// optionally with a prefix filter. MinIO writes to Redis database 0 unless
// its address config says otherwise; the Consumer's client must use the same
// database. (ListenBucketNotification delivered nothing with the MinIO build
// the project tests against; it is not used.)
//
// Only s3:ObjectCreated:Put, :Post, :Copy and :CompleteMultipartUpload
// start a scan. Every other event is consumed and ignored, not
// dead-lettered: s3:ObjectRemoved:*, and in particular
// s3:ObjectCreated:PutTagging, which MinIO sends under s3:ObjectCreated:*
// whenever a tag is written — including by TagVerdict and TagPending.
//
// # What a record looks like (measured against MinIO)
//
// The record of an upload of "seller-1/asset-9/my (1).zip" with
// user metadata Asset-Id, Seller-Id and Asset-Kind (minio-go
// PutObjectOptions.UserMetadata; on the wire X-Amz-Meta-Asset-Id, ...):
//
//	"s3": {"bucket": {"name": "uploads", ...},
//	       "object": {"key": "seller-1%2Fasset-9%2Fmy+%281%29.zip",
//	                  "size": 5, "eTag": "5d41402abc4b2a76b9719d911017c592",
//	                  "contentType": "application/octet-stream",
//	                  "userMetadata": {"X-Amz-Meta-Asset-Id": "a-1",
//	                                   "X-Amz-Meta-Asset-Kind": "container-image",
//	                                   "X-Amz-Meta-Seller-Id": "S-2",
//	                                   "content-type": "application/octet-stream"},
//	                  "versionId": "d08cbba8-...",  (versioned buckets only)
//	                  "sequencer": "18EBE49BE3139142"}}
//
// In detail:
//
//   - The key is escaped with Go's url.QueryEscape: "/" is %2F, a space is
//     "+", a literal "+" is %2B. It is decoded with url.QueryUnescape
//     (url.PathUnescape would turn "+" into a literal plus, wrongly).
//   - userMetadata holds the user metadata under the canonical header name
//     (X-Amz-Meta-Asset-Id), plus "content-type". It is present for Put,
//     CompleteMultipartUpload (metadata given when the upload was created)
//     and Copy (metadata of the copy), and absent for removals. Names are
//     matched case-insensitively.
//   - versionId is passed on, so a scan pins the exact version uploaded; a
//     later overwrite has its own event and its own scan.
//
// # Where the asset and seller ids come from (Mapping)
//
// Two ways, each enabled by a Mapping flag; at least one must be on.
//
//  1. FromMetadata: user metadata X-Amz-Meta-Asset-Id and
//     X-Amz-Meta-Seller-Id set by the uploader.
//  2. FromKeyLayout: the key is "<seller_id>/<asset_id>/<file name>"; the
//     file name is everything after the second slash and must not be
//     empty (it may contain further slashes).
//
// With both on, each id is taken from metadata when present, else from the
// key; when both sources give an id and they differ, the event is rejected
// (dead-lettered) rather than guessed. Uploader-supplied metadata is only as
// trustworthy as the uploader: a seller can write any seller id into it. If
// each seller may only write under its own prefix (an IAM policy on
// "uploads/<seller>/*"), FromKeyLayout is the trustworthy source, and
// enabling both turns a lying Seller-Id into a rejected event.
//
// The kind is X-Amz-Meta-Asset-Kind when present, else Mapping.DefaultKind,
// else "package". The ids and the kind are validated by the Submitter (the
// API's rules); a rejection there is ErrPermanent.
//
// # Delivery
//
// Consumer.Run moves one event at a time from List to Processing with
// BLMOVE, handles it, then removes it from Processing (LREM). If the process
// dies mid-event, the event is still in Processing and is handled first on
// the next start, so no upload is lost; at worst it is submitted twice, which
// the scan store's dedup turns into the same scan. Transient failures (Redis,
// storage, queue unavailable) are retried with backoff, the event staying in
// Processing, for as long as it takes. Malformed events and ErrPermanent
// failures are moved to Dead unchanged, with a log line saying why; re-drive
// them with `LMOVE <dead> <list> LEFT RIGHT` after fixing the cause.
// Processing and Dead default to "{<list>}:processing" and "{<list>}:dead":
// the hash tag keeps them in the list's Redis Cluster slot, which BLMOVE
// and the finishing MULTI need.
//
// Events are handled in list order, but MinIO does not keep the upload
// order in the list (two sequential uploads were observed to arrive
// swapped); nothing here depends on order.
//
// Give each running consumer its own Processing list (a stable name per
// instance), or run one consumer per List: a consumer that starts up treats
// everything in its Processing list as its own leftovers.
//
// # Verdict tags and a download policy
//
// TagVerdict sets the object tag assetscan-verdict=pass|fail|error (keeping
// the object's other tags). With it, a bucket policy can deny downloads of
// everything that has not passed. The README's example, for the bucket
// "uploads":
//
//	{
//	  "Version": "2012-10-17",
//	  "Statement": [
//	    {
//	      "Sid": "DenyDownloadUnlessScanPassed",
//	      "Effect": "Deny",
//	      "Principal": {"AWS": ["*"]},
//	      "Action": ["s3:GetObject", "s3:GetObjectVersion"],
//	      "Resource": ["arn:aws:s3:::uploads/*"],
//	      "Condition": {
//	        "StringNotEquals": {"s3:ExistingObjectTag/assetscan-verdict": "pass"}
//	      }
//	    }
//	  ]
//	}
//
// An object without the tag, or tagged fail, error or pending, is denied.
// Caveats, measured against the project's MinIO build:
//
//   - MinIO evaluates bucket policies for anonymous requests only.
//     Authenticated requests, presigned URLs included, are judged by the
//     IAM policy of the signing user alone: put the same Deny statement into
//     the IAM policy of every user or group that hands out downloads. (On
//     AWS a bucket policy applies to every principal, including the
//     scanner, which must read unscanned objects: exempt its role with an
//     extra condition such as "ArnNotEquals": {"aws:PrincipalArn": "<scanner
//     role ARN>"}.)
//   - On an object that has no tags at all, MinIO takes the tags of the
//     condition from the request's own X-Amz-Tagging header: an anonymous
//     GET with "X-Amz-Tagging: assetscan-verdict=pass" downloaded an
//     untagged object. Once the object has any tag, the header is ignored.
//     Set Consumer.S3 so that the consumer tags every upload
//     assetscan-verdict=pending (TagPending) before submitting it, which
//     closes the gap a few milliseconds after the upload.
//   - An uploader can set assetscan-verdict=pass itself (PutObject with
//     X-Amz-Tagging, or PutObjectTagging). Deny uploaders
//     s3:PutObjectTagging and s3:DeleteObjectTagging, and s3:PutObject with
//     "ForAnyValue:StringEquals": {"s3:RequestObjectTagKeys":
//     ["assetscan-verdict"]}, in their IAM policy. (TagPending does not
//     overwrite an existing assetscan-verdict tag, so it does not undo such a
//     forged tag.)
package events
