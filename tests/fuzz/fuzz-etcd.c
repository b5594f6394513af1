/* SPDX-License-Identifier: MIT */
/*
 * fuzz-etcd.c -- the etcd kind's reading of what a cluster (or anything
 * listening at an endpoint) sends back: a reply judged by fl__etcd_reply (JSON
 * or not, gateway error or answer), the keys of a range reply decoded and
 * judged as a lock queue, a transaction's nested range, a lease's TTL, the
 * holder record in a key's value, and the watch stream fed in two chunks.
 * The backend's static functions are reached by including its source.
 * Never a crash, an overread or a leak; the outputs keep their promises.
 */
#include "../../lib/backend-etcd.c"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char base[] = "/filelock/tmp/x.lock/";

static void judge(struct json_object *range)
{
	static struct etcd_hold p;
	struct json_object *kvs = fl__etcd_json_get(range, "kvs");
	size_t n = kvs && json_object_is_type(kvs, json_type_array) ? json_object_array_length(kvs)
								       : 0;

	for (size_t i = 0; i < n && i < 64; i++) {
		static struct etcd_kv kv;
		char rec[1024];
		struct fl_p1 p1;

		if (!etcd_kv_parse(json_object_array_get_idx(kvs, i), base, &kv))
			continue;
		if (strncmp(kv.name, base, strlen(base)) != 0 || strchr(kv.child, '/') != NULL)
			abort();
		/* The first key found is ours: judge the queue from it. */
		if (i == 0)
			snprintf(p.key, sizeof(p.key), "%s", kv.name);
		if (kv.value64 && fl__etcd_b64_dec(kv.value64, rec, sizeof(rec)) > 0)
			(void)fl__p1_parse(rec, strlen(rec), &p1);
	}
	for (int mode = 0; mode < 2; mode++) {
		int r = etcd_judge(&p, mode ? FL_SHARED : FL_EXCLUSIVE, base, range, 7);

		if (r != 0 && r != -EAGAIN && r != -ESTALE)
			abort();
		if (r == -EAGAIN && p.wait_key[0] == '\0')
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_object *j = NULL, *rs;
	struct etcd_watch w = { 0 };
	char *body, what[ETCD_NOTE];
	int gateway, code, r;

	if (size > 65536)
		return 0;
	body = malloc(size + 1); /* exact size + NUL: ASan sees any overread */
	memcpy(body, data, size);
	body[size] = '\0';

	r = fl__etcd_reply(size ? body : NULL, 200, &j, &gateway, &code, what, sizeof(what));
	if ((r == 0) != (j != NULL) || (r != 0 && strlen(what) >= sizeof(what)) || r > 0)
		abort();
	if (j != NULL) {
		judge(j);
		rs = fl__etcd_json_get(j, "responses");
		if (rs && json_object_is_type(rs, json_type_array))
			for (size_t i = 0; i < json_object_array_length(rs) && i < 8; i++) {
				struct json_object *x =
					fl__etcd_json_get(json_object_array_get_idx(rs, i), "response_range");
				if (x)
					judge(x);
			}
		(void)fl__etcd_json_i64(fl__etcd_json_get(j, "result"), "TTL");
		(void)fl__etcd_json_i64(fl__etcd_json_get(j, "header"), "revision");
		json_object_put(j);
	}
	/* Any other status is never an answer. */
	if (fl__etcd_reply(size ? body : NULL, 503, &j, &gateway, &code, what, sizeof(what)) == 0)
		abort();

	/* The watch stream, cut in two where the first byte says. */
	w.tok = json_tokener_new();
	if (w.tok != NULL) {
		size_t cut = size ? data[0] % (size + 1) : 0;
		if (etcd_watch_data(body, 1, cut, &w) == cut && !w.woke)
			(void)etcd_watch_data(body + cut, 1, size - cut, &w);
		json_tokener_free(w.tok);
	}
	free(body);
	return 0;
}
