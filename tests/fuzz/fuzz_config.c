/*
 * fuzz_config.c - the YAML config loader under hostile input: any bytes
 * must give a config or a list of file:line:col errors, never a crash.
 */
#include <stdint.h>
#include <stdlib.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_errors *errs = NULL;
	struct config *cfg = NULL;
	if (config_errors_new(&errs) < 0)
		return 0;
	config_load_buffer(&cfg, (const char *)data, size, "fuzz.yaml", NULL, CONFIG_NO_PATH_CHECKS,
			   errs);
	config_free(cfg);
	config_errors_free(errs);
	return 0;
}
