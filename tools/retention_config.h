/*
 * retention_config.h - the config's retention: section as index/'s
 * retention rules (index/ includes nothing from config/, so the programs
 * convert), and the loading of the config the CLI's prune reads.
 */
#ifndef CAPVAULT_RETENTION_CONFIG_H
#define CAPVAULT_RETENTION_CONFIG_H

#include "config.h"
#include "retention.h"

/* Fills rules from rc; the rules point into rc (keep it alive) and own
 * only their policies array. Returns 0 or -ENOMEM. */
int retention_rules_from_config(const struct config_retention *rc, struct retention_rules *rules);
/* Frees what retention_rules_from_config allocated. */
void retention_rules_release(struct retention_rules *rules);

/* Loads path, or the embedded default (no path checks) when NULL,
 * printing every error to stderr. Returns the config or NULL. */
struct config *retention_load_config(const char *path);

#endif
