/*
 * objstore_config.h - the object store a configuration names: the one
 * place that turns config.h's object_store section into objstore.h's S3
 * backend, for capvaultd and the offline CLI alike.
 */
#ifndef CAPVAULT_OBJSTORE_CONFIG_H
#define CAPVAULT_OBJSTORE_CONFIG_H

#include "config.h"
#include "errbuf.h"
#include "objstore.h"

/*
 * Opens the S3 store of os (which must be enabled), reading its
 * credentials (environment first, then credentials_file). Returns 0 or
 * objstore_s3_new()'s error with eb.
 */
int objstore_from_config(struct objstore **out, const struct config_object_store *os,
			 struct errbuf *eb);

#endif
