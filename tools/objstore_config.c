/*
 * objstore_config.c - config.h's object_store section into an S3
 * objstore (see objstore_config.h).
 */
#include "objstore_config.h"

#include <errno.h>

#define NS_PER_MS 1000000ull

static uint32_t ms(uint64_t ns)
{
	uint64_t v = (ns + NS_PER_MS - 1) / NS_PER_MS;
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

int objstore_from_config(struct objstore **out, const struct config_object_store *os,
			 struct errbuf *eb)
{
	*out = NULL;
	if (!os->enabled)
		return errbuf_set(eb, -EINVAL, "no object_store in the configuration");
	const struct objstore_s3_config cfg = {
		.endpoint = os->endpoint,
		.bucket = os->bucket,
		.region = os->region,
		.prefix = os->prefix,
		.ca_file = os->ca_file,
		.credentials_file = os->credentials_file,
		.profile = os->profile,
		.connect_timeout_ms = ms(os->connect_timeout_ns),
		.request_timeout_ms = ms(os->request_timeout_ns),
		.read_timeout_ms = ms(os->read_timeout_ns),
		.max_inflight = os->max_inflight,
		.part_size = os->part_size,
	};
	return objstore_s3_new(out, &cfg, eb);
}
