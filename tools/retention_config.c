/*
 * retention_config.c - see retention_config.h.
 */
#include "retention_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int retention_rules_from_config(const struct config_retention *rc, struct retention_rules *rules)
{
	struct retention_policy *p = calloc(rc->n_policies ? rc->n_policies : 1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	for (size_t i = 0; i < rc->n_policies; i++) {
		const struct config_policy *c = &rc->policies[i];
		p[i] = (struct retention_policy){
			.name = c->name,
			.tags = (const char *const *)c->tags.v,
			.ntags = c->tags.n,
			.folder = c->folder,
			.has_max_age = c->has_max_age,
			.max_age_ns = c->max_age_ns,
			.age_by_last_packet = c->age_by == CONFIG_AGE_BY_LAST_PACKET,
			.has_max_count = c->has_max_count,
			.max_count = c->max_count,
			.has_tier_after = c->has_tier_after,
			.tier_after_ns = c->tier_after_ns,
		};
	}
	*rules = (struct retention_rules){
		.protect_tag = rc->protect_tag,
		.max_total_size = rc->max_total_size,
		.local_max_size = rc->local_max_size,
		.min_free_bytes = rc->min_free_bytes,
		.min_free_percent = rc->min_free_percent,
		.policies = p,
		.n_policies = rc->n_policies,
	};
	return 0;
}

void retention_rules_release(struct retention_rules *rules)
{
	free((void *)rules->policies);
	rules->policies = NULL;
	rules->n_policies = 0;
}

struct config *retention_load_config(const char *path)
{
	struct config_errors *errs = NULL;
	struct config *cfg = NULL;
	if (config_errors_new(&errs) < 0)
		return NULL;
	int err = path ? config_load(&cfg, path, errs)
		       : config_load_default(&cfg, CONFIG_NO_PATH_CHECKS, errs);
	for (size_t i = 0; i < config_errors_count(errs); i++)
		fprintf(stderr, "%s\n", config_errors_get(errs, i)->text);
	if (err && config_errors_count(errs) == 0)
		fprintf(stderr, "capvault: %s: %s\n", path ? path : "<default>", strerror(-err));
	config_errors_free(errs);
	return err ? NULL : cfg;
}
