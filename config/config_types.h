/*
 * config_types.h - the schema's value types (config_types.c) and the
 * helpers the schema's cross-field checks share with them.
 */
#ifndef CAPVAULT_CONFIG_TYPES_H
#define CAPVAULT_CONFIG_TYPES_H

#include <stdbool.h>

#include "config_priv.h"

extern const struct opt_type t_string, t_path, t_bool, t_uint, t_u64, t_duration, t_size,
	t_enum, t_log_level, t_strv, t_tags, t_section, t_section_list;

/* Joins a relative path to the base folder (see config.h). Returns 0 or
 * -ENOMEM. */
int config_path_resolve(const struct parse_ctx *c, const char *text, char **out);

bool config_tag_valid(const char *tag);

#endif
