/*
 * fuzz_config.c - libFuzzer target: the INI-style configuration parser
 * (config_load) on a private temporary file rewritten from each input, and
 * config_check_reload between the result and the previous accepted one.
 *
 * Owns: one temporary file ($TMPDIR, else /dev/shm or /tmp), removed at exit.
 * Must never: print the input, touch any other file, or open sockets.
 *
 * Invariants: a refusal always leaves a non-empty, NUL-terminated message;
 * an accepted configuration has the required keys set and sane sizes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_path[64];
static int fuzz_fd = -1;
static struct config fuzz_prev;
static int fuzz_have_prev;

static void fuzz_cleanup(void)
{
	if (fuzz_fd >= 0)
		unlink(fuzz_path);
	if (fuzz_have_prev)
		config_free(&fuzz_prev);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	/* The file is rewritten for every input: memory-backed when possible. */
	if (!dir || strlen(dir) >= 40)
		dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(fuzz_path, sizeof(fuzz_path), "%s/fuzz-config.XXXXXX", dir);
	fuzz_fd = mkstemp(fuzz_path);
	if (fuzz_fd < 0)
		abort();
	atexit(fuzz_cleanup);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg;
	char err[512];

	if (size > 65536)
		return 0;
	if (ftruncate(fuzz_fd, 0) != 0 || pwrite(fuzz_fd, data, size, 0) != (ssize_t)size)
		abort();
	memset(err, 0x5a, sizeof(err));
	if (config_load(fuzz_path, &cfg, err, sizeof(err)) != 0) {
		if (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0')
			abort();
		return 0;
	}
	if (cfg.listen == NULL || cfg.db_conninfo == NULL || cfg.max_body_size == 0 ||
	    cfg.max_header_size == 0)
		abort();
	if (fuzz_have_prev) {
		err[0] = '\0';
		if (config_check_reload(&fuzz_prev, &cfg, err, sizeof(err)) != 0 &&
		    (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0'))
			abort();
		config_free(&fuzz_prev);
	}
	fuzz_prev = cfg;
	fuzz_have_prev = 1;
	return 0;
}
