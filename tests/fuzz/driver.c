/* SPDX-License-Identifier: MIT */
/*
 * driver.c -- a main() for the fuzz targets when they are not built with
 * libFuzzer, so that `make check` runs every target on every compiler:
 *
 *   fuzz-X [-t SECONDS] [-s SEED] CORPUS_DIR|FILE...
 *
 * Runs each corpus input, then mutates random corpus inputs (bit flips,
 * byte sets, inserts, deletes, splices, interesting values) for SECONDS
 * (default 2).  A crash is a crash: the sanitizer or the signal reports it
 * and the test fails.  For long coverage-guided runs build the same target
 * with clang -fsanitize=fuzzer (see `make fuzz`).
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_INPUT 4096
#define MAX_CORPUS 1024

static uint8_t *corpus[MAX_CORPUS];
static size_t corpus_len[MAX_CORPUS];
static int ncorpus;

static void add_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t buf[FUZZ_MAX_INPUT];
	size_t n;

	if (f == NULL || ncorpus >= MAX_CORPUS) {
		if (f)
			fclose(f);
		return;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	corpus[ncorpus] = malloc(n ? n : 1);
	memcpy(corpus[ncorpus], buf, n);
	corpus_len[ncorpus++] = n;
}

static void add_path(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *e;

	if (stat(path, &st) != 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		add_file(path);
		return;
	}
	d = opendir(path);
	while (d && (e = readdir(d)) != NULL) {
		char p[4096];
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
		add_file(p);
	}
	if (d)
		closedir(d);
}

static uint64_t rng;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static size_t mutate(uint8_t *buf, size_t n)
{
	static const uint8_t interesting[] = { 0, '\n', '\r', ' ', '=', '-', '+', '0', '9',
					       0x7f, 0x80, 0xc0, 0xff, '\t', '/', '.' };
	int rounds = 1 + (int)(rnd() % 8);

	for (int r = 0; r < rounds; r++) {
		switch (rnd() % 7) {
		case 0: /* bit flip */
			if (n)
				buf[rnd() % n] ^= (uint8_t)(1u << (rnd() % 8));
			break;
		case 1: /* interesting byte */
			if (n)
				buf[rnd() % n] = interesting[rnd() % sizeof(interesting)];
			break;
		case 2: /* insert */
			if (n < FUZZ_MAX_INPUT) {
				size_t at = n ? rnd() % (n + 1) : 0;
				memmove(buf + at + 1, buf + at, n - at);
				buf[at] = (uint8_t)rnd();
				n++;
			}
			break;
		case 3: /* delete */
			if (n) {
				size_t at = rnd() % n;
				memmove(buf + at, buf + at + 1, n - at - 1);
				n--;
			}
			break;
		case 4: /* splice from another input */
			if (ncorpus) {
				int k = (int)(rnd() % (uint64_t)ncorpus);
				size_t len = corpus_len[k] ? rnd() % corpus_len[k] : 0;
				size_t at = n ? rnd() % n : 0;
				if (at + len > FUZZ_MAX_INPUT)
					len = FUZZ_MAX_INPUT - at;
				memcpy(buf + at, corpus[k], len);
				if (at + len > n)
					n = at + len;
			}
			break;
		case 5: /* truncate */
			if (n)
				n = rnd() % n;
			break;
		default: /* duplicate a run */
			if (n && n < FUZZ_MAX_INPUT / 2) {
				size_t at = rnd() % n, len = rnd() % (n - at) + 1;
				if (n + len <= FUZZ_MAX_INPUT) {
					memmove(buf + at + len, buf + at, n - at);
					n += len;
				}
			}
			break;
		}
	}
	return n;
}

/* The input being run, written to ./fuzz-crash-input when a check aborts or
 * the target faults, so that a crash can be replayed as a corpus file. */
static const uint8_t *cur_input;
static size_t cur_len;

static void on_crash(int sig)
{
	int fd = open("fuzz-crash-input", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	static const char msg[] = "input written to fuzz-crash-input\n";

	if (fd >= 0) {
		if (write(fd, cur_input, cur_len) < 0) {
			/* Nothing more to do in a dying process. */
		}
		close(fd);
		if (write(2, msg, sizeof(msg) - 1) < 0) {
			/* Same. */
		}
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void run_one(const uint8_t *data, size_t size)
{
	cur_input = data;
	cur_len = size;
	LLVMFuzzerTestOneInput(data, size);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	double seconds = 2, end;
	unsigned long long execs = 0;
	uint8_t buf[FUZZ_MAX_INPUT + 1];
	int c;

	rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	while ((c = getopt(argc, argv, "t:s:")) != -1) {
		if (c == 't')
			seconds = atof(optarg);
		else if (c == 's')
			rng = strtoull(optarg, NULL, 0);
		else
			return 64;
	}
	if (rng == 0)
		rng = 1;
	printf("seed 0x%llx\n", (unsigned long long)rng);
	fflush(stdout); /* a crash must not lose the seed */
	signal(SIGABRT, on_crash);
	signal(SIGSEGV, on_crash);
	signal(SIGBUS, on_crash);
	for (int i = optind; i < argc; i++)
		add_path(argv[i]);
	for (int i = 0; i < ncorpus; i++, execs++)
		run_one(corpus[i], corpus_len[i]);
	end = now() + seconds;
	while (now() < end) {
		for (int k = 0; k < 256; k++, execs++) {
			size_t n = 0;
			if (ncorpus) {
				int i = (int)(rnd() % (uint64_t)ncorpus);
				n = corpus_len[i];
				memcpy(buf, corpus[i], n);
			}
			n = mutate(buf, n);
			run_one(buf, n);
		}
	}
	printf("%d corpus inputs, %llu executions, no crash\n", ncorpus, execs);
	printf("1 passed, 0 failed\n");
	for (int i = 0; i < ncorpus; i++)
		free(corpus[i]);
	return 0;
}
