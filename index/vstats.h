/*
 * vstats.h - a store's statistics as JSON: what `capvault stats --json`
 * prints and GET /v1/stats serves (before the daemon's import counters),
 * built in one place so both say the same.
 */
#ifndef CAPVAULT_VSTATS_H
#define CAPVAULT_VSTATS_H

#include <jansson.h>

struct vault;

/*
 * Fills *out with: captures, objects, object_bytes, packets, index_bytes,
 * free_bytes, fs_total_bytes, index_sst_bytes, oldest_capture,
 * newest_capture ({id, import_time} or null), first_packet, last_packet
 * ("YYYY-MM-DD HH:MM:SS" UTC or null) and tags ({tag: {captures, bytes,
 * packets}}). Returns 0 or a negative errno (*out is then NULL).
 */
int vault_stats_json(struct vault *v, json_t **out);

#endif
